"""The routing file: what raises an alert, how severe, for which team, on which channels.

Pure: parsing and deciding, no I/O beyond reading the file.
"""

from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.tagger.rules.schema import Language
from shared.events import AlertKind, Severity
from shared.models import OrderStatus

# How severities compare: an alert's severity is the highest of its open reasons'.
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Strict):
    """Non-critical alerts wait until the end of the quiet hours; critical ones go through."""

    start: time
    end: time
    timezone: str = "Asia/Shanghai"

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight

    def ends_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(ZoneInfo(self.timezone))
        end = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        return end if end > local else end + timedelta(days=1)


class _Channel(_Strict):
    # Does the receiver deduplicate on our Idempotency-Key? Then a delivery interrupted mid-send
    # is sent again under the same key; otherwise it is not (see docs/notifier.md).
    has_idempotency_key: ClassVar[bool] = False

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    rate_per_minute: int = Field(default=600, ge=1, le=60_000)
    # messages on the wire at once: what a crash can leave unsettled (see docs/notifier.md)
    max_in_flight: int = Field(default=1, ge=1, le=64)
    # alerts in one message: a chat robot's markdown stops at 4,096 bytes (20 fit)
    max_digest: int = Field(default=20, ge=1, le=500)
    quiet_hours: QuietHours | None = None
    # alerts below this severity stay on the page only (info: for the record)
    min_severity: Severity = Severity.WARNING
    # tell the channel again when an open alert's severity rises (a later reason of the same
    # or lower severity only updates the page), and when an alert it was told of resolves
    # (unset: as Alertmanager does, webhooks yes, chat robots and e-mail no)
    send_updates: bool = True
    send_resolved: bool | None = None
    # what to do with a delivery interrupted mid-send: resend (at least once) or not (at most
    # once); unset, the channel's nature decides
    resend_interrupted: bool | None = None
    # the language of the message's words and tag labels; unset: Chinese for the Chinese chat
    # robots (WeCom, DingTalk), English elsewhere
    language: Literal["zh-CN", "en"] | None = None
    default_language: ClassVar[str] = "en"

    @property
    def message_language(self) -> str:
        return self.language or self.default_language

    @property
    def tells_resolved(self) -> bool:
        return self.has_idempotency_key if self.send_resolved is None else self.send_resolved

    def wants(self, severity: Severity) -> bool:
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]

    @property
    def resends_interrupted(self) -> bool:
        if self.resend_interrupted is None:
            return self.has_idempotency_key
        return self.resend_interrupted


class WebhookChannel(_Channel):
    has_idempotency_key: ClassVar[bool] = True

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = None
    unsigned: bool = False  # must be said out loud to deliver without a signature
    max_in_flight: int = Field(default=4, ge=1, le=64)  # a resend is harmless: it has a key
    # a receiver of JSON takes a larger digest: each message costs a claim, a read, a request
    # and a settlement whatever its size, so at 1,000 alerts/s twenty a message is 50 of each
    max_digest: int = Field(default=100, ge=1, le=500)


class WeComChannel(_Channel):
    default_language: ClassVar[str] = "zh-CN"

    type: Literal["wecom"]
    url: str = Field(pattern=r"^https?://")
    rate_per_minute: int = Field(default=20, ge=1, le=60_000)


class DingTalkChannel(_Channel):
    default_language: ClassVar[str] = "zh-CN"

    type: Literal["dingtalk"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = None
    rate_per_minute: int = Field(default=20, ge=1, le=60_000)


class SlackChannel(_Channel):
    type: Literal["slack"]
    url: str = Field(pattern=r"^https?://")


class EmailChannel(_Channel):
    type: Literal["email"]
    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = False
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)


# The one place channel kinds are listed: a new channel is a class above and a name here (and
# its message format in channels.py).
AnyChannel = WebhookChannel | WeComChannel | DingTalkChannel | SlackChannel | EmailChannel
Channel = Annotated[AnyChannel, Field(discriminator="type")]


class Condition(_Strict):
    """What an order must show for a severity rule to apply; every given part must hold."""

    tags_any: list[str] = Field(default_factory=list)
    tags_none: list[str] = Field(default_factory=list)
    amount_gte: Decimal | None = Field(default=None, ge=0)
    amount_lt: Decimal | None = Field(default=None, gt=0)

    def holds(self, tags: set[str], amount: Decimal) -> bool:
        return (
            (not self.tags_any or not tags.isdisjoint(self.tags_any))
            and tags.isdisjoint(self.tags_none)
            and (self.amount_gte is None or amount >= self.amount_gte)
            and (self.amount_lt is None or amount < self.amount_lt)
        )


def default_why(kind: AlertKind, severity: Severity) -> str:
    """Why a reason has its route's default severity (no severity rule applied), as stored; the
    page recognises it to word it in the reader's language."""
    return f"{kind.value}: {severity.value} by default"


class SeverityRule(_Strict):
    severity: Severity
    when: Condition
    why: str = Field(min_length=1, max_length=200)
    # ``why`` in other languages, for the support page and the console (zh-CN: "…"), keyed by
    # a language they speak (as ``team_names``: a misspelt zh_CN is refused at load); the
    # channels send ``why``, which alerts store
    whys: dict[Language, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict
    )


class Route(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    kind: AlertKind
    # when no severity rule applies
    severity: Severity
    # the first rule whose condition holds gives the severity (see docs/notifier.md)
    severity_rules: list[SeverityRule] = Field(default_factory=list)
    # one alert per order and team: the team's routes add their reasons to it (an id part)
    team: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    when_tags_any: list[str] = Field(min_length=1)
    # the reason holds only while the order's status is one of these (unset: any status);
    # when no reason of an alert holds any more, it resolves
    open_while_status: list[OrderStatus] | None = None
    channels: list[str] = Field(default_factory=list)

    def matches(self, tags: set[str], status: OrderStatus) -> bool:
        """Does the order, as it is now, give this route a reason to alert?"""
        in_status = self.open_while_status is None or status in self.open_while_status
        return in_status and not tags.isdisjoint(self.when_tags_any)

    def severity_for(self, tags: set[str], amount: Decimal) -> tuple[Severity, str]:
        """The severity of this route's reason for an order with these tags and amount, and
        why (the rule's words, or the route's default)."""
        for rule in self.severity_rules:
            if rule.when.holds(tags, amount):
                return rule.severity, rule.why
        return self.severity, default_why(self.kind, self.severity)


class Escalation(_Strict):
    after_minutes: float = Field(default=15, gt=0)
    kinds: list[AlertKind] = Field(default_factory=lambda: [AlertKind.URGENT])
    channels: list[str] = Field(default_factory=list)


class Routing(_Strict):
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    escalation: Escalation = Field(default_factory=Escalation)
    # a team's name in each language for the support page ({risk: {zh-CN: 风控, en: Risk}});
    # the page shows the team's id where none is given
    team_names: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")],
        dict[Language, Annotated[str, Field(min_length=1, max_length=64)]],
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _channels_exist(self) -> "Routing":
        known = [channel.id for channel in self.channels]
        if len(set(known)) != len(known):
            raise ValueError("channel ids must be unique")
        for route in self.routes:
            for name in route.channels:
                if name not in known:
                    raise ValueError(f"route {route.id!r}: unknown channel {name!r}")
        for name in self.escalation.channels:
            if name not in known:
                raise ValueError(f"escalation: unknown channel {name!r}")
        unknown = sorted(set(self.team_names) - {route.team for route in self.routes})
        if unknown:
            raise ValueError(f"team_names: no route sends to {', '.join(unknown)}")
        kinds = [(route.team, route.kind) for route in self.routes]
        if len(set(kinds)) != len(kinds):
            raise ValueError("one route per team and kind: an alert holds one reason per kind")
        return self

    def why_words(self) -> dict[str, dict[Language, str]]:
        """Each severity rule's ``why`` (as alerts store it) with its words in other languages,
        for the rules that give some."""
        return {
            rule.why: rule.whys
            for route in self.routes
            for rule in route.severity_rules
            if rule.whys
        }

    def whys_in(self, language: str) -> dict[str, str]:
        """Each severity rule's ``why`` (as alerts store it) in ``language``, where the file
        words it so."""
        return {
            rule.why: rule.whys[language]
            for route in self.routes
            for rule in route.severity_rules
            if language in rule.whys
        }

    def team_names_in(self, language: str) -> dict[str, str]:
        """Each team a route sends to, by id, with its name in ``language`` (its id where the
        file gives none), in file order."""
        named = {
            team: name
            for team, names in self.team_names.items()
            for code, name in names.items()
            if code == language
        }
        return {route.team: named.get(route.team, route.team) for route in self.routes}

    def teams(self) -> dict[str, list[Route]]:
        """Each team's routes, in file order (the order breaks ties between reasons)."""
        found: dict[str, list[Route]] = {}
        for route in self.routes:
            found.setdefault(route.team, []).append(route)
        return found

    def warnings(self) -> list[str]:
        """What is valid but risky, said at startup."""
        return [
            f"channel {channel.id!r}: webhook without secret_env is not delivered; set"
            " secret_env to sign it, or unsigned: true to send it unsigned"
            for channel in self.channels
            if isinstance(channel, WebhookChannel)
            and not channel.secret_env
            and not channel.unsigned
        ] + [
            f"channel {channel.id!r}: webhook delivered unsigned (unsigned: true)"
            for channel in self.channels
            if isinstance(channel, WebhookChannel) and not channel.secret_env and channel.unsigned
        ]


class RoutingFileError(ValueError):
    """The routing file is invalid; the message names the place and the problem."""


def load_routing(path: Path) -> Routing:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return Routing.model_validate(data)
    except yaml.YAMLError as error:
        raise RoutingFileError(f"{path}: not valid YAML: {error}") from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise RoutingFileError(f"{path}: {problems}") from None


def order_url(base: str, order_no: str) -> str:
    """The order's page: its number URL-encoded as one path segment (``A/../x`` stays inside)."""
    return f"{base.rstrip('/')}/{quote(order_no, safe='')}"

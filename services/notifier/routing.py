"""The routing file: what raises an alert, how severe, for which team, on which channels.

Pure: parsing and deciding, no I/O beyond reading the file.
"""

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.events import Alert, AlertKind, OrderTagged, Severity


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
    quiet_hours: QuietHours | None = None
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


class Route(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    kind: AlertKind
    severity: Severity
    team: str = Field(min_length=1, max_length=64)
    when_tags_any: list[str] = Field(min_length=1)
    channels: list[str] = Field(default_factory=list)


class Escalation(_Strict):
    after_minutes: float = Field(default=15, gt=0)
    kinds: list[AlertKind] = Field(default_factory=lambda: [AlertKind.URGENT])
    channels: list[str] = Field(default_factory=list)


class Routing(_Strict):
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    escalation: Escalation = Field(default_factory=Escalation)

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
        return self

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


def alerts_for(
    event: OrderTagged, routing: Routing, order_url_base: str
) -> list[tuple[Alert, Route]]:
    """The alerts a tagged order raises: one per route whose tags it has just gained."""
    added = {tag.name for tag in event.tags_added}
    found = []
    for route in routing.routes:
        matched = [name for name in route.when_tags_any if name in added]
        if not matched:
            continue
        reasons = [tag.reason for tag in event.tags if tag.name in matched]
        alert = Alert(
            alert_id=Alert.id_for(event.order_no, route.kind),
            kind=route.kind,
            severity=route.severity,
            order_no=event.order_no,
            customer_id=event.customer_id,
            customer_tier=event.facts.customer_tier,
            amount=event.facts.total,
            currency=event.facts.currency,
            tags=[tag.name for tag in event.tags],
            reasons=reasons,
            order_url=order_url(order_url_base, event.order_no),
        )
        found.append((alert, route))
    return found


def order_url(base: str, order_no: str) -> str:
    """The order's page: its number URL-encoded as one path segment (``A/../x`` stays inside)."""
    return f"{base.rstrip('/')}/{quote(order_no, safe='')}"

"""One alert per order and team: how a tagged-order event changes it. Pure, no I/O.

An alert gathers its team's *reasons* (one per route: urgent, VIP, fraud risk...). A reason holds
while the order has one of the route's tags and is in one of the route's statuses; the alert's
severity is the highest of its holding reasons'; when none holds any more the alert resolves,
and it opens again if a reason comes back. Like Alertmanager's grouping, a person is told
again only about a change they must see (raised, severity up, resolved, reopened); a new reason
of the same or lower severity only updates the alert on the page.

Replay-safe: each event applies once (its id is remembered), and an event older than the state
the alert already reflects changes nothing (a tagged event republished late by the tagger).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.notifier.routing import SEVERITY_RANK, AnyChannel, Route, Routing, order_url
from shared.events import Alert, AlertKind, AlertStatus, OrderTaggedAsRead, Severity

KEEP_EVENT_IDS = 200  # an order sees a handful of events; bounded all the same


class Notice(StrEnum):
    """What the change means to the people on the alert's channels."""

    NONE = "none"  # stored and shown on the page, nobody is told again
    RAISED = "raised"
    ESCALATED = "escalated"  # severity rose: told again
    RESOLVED = "resolved"
    REOPENED = "reopened"


class _Loose(BaseModel):
    # stored documents carry bookkeeping fields (deliveries, _id...) this model does not own
    model_config = ConfigDict(extra="ignore")


class Reason(_Loose):
    """One route's reason on an alert, kept after it stops holding (the alert's history)."""

    route_id: str
    kind: AlertKind
    severity: Severity
    severity_why: str
    tag_reasons: list[str]
    since: AwareDatetime
    cleared_at: AwareDatetime | None = None

    @property
    def holds(self) -> bool:
        return self.cleared_at is None


class Change(_Loose):
    at: AwareDatetime
    event_id: str
    change: str  # raised, reason_added, reason_cleared, severity_raised, severity_lowered, ...
    kind: AlertKind | None = None
    severity: Severity | None = None


class AlertGroup(_Loose):
    """An order's alert for one team, as stored (without its deliveries)."""

    alert_id: str
    order_no: str
    customer_id: str
    team: str
    kind: AlertKind  # the kind of its most severe holding reason
    kinds: list[AlertKind]  # the kinds of its holding reasons
    severity: Severity
    status: AlertStatus
    route_id: str
    customer_tier: str | None = None
    amount: Decimal
    currency: str
    tags: list[str]
    reasons: list[str]
    order_url: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    revision: int = 1  # counts the changes people were told about
    state_at: AwareDatetime  # when the newest event applied happened
    applied_events: list[str] = Field(default_factory=list)
    causes: list[Reason] = Field(default_factory=list)
    history: list[Change] = Field(default_factory=list)

    def alert(self) -> Alert:
        return Alert(
            alert_id=self.alert_id,
            kind=self.kind,
            severity=self.severity,
            order_no=self.order_no,
            customer_id=self.customer_id,
            customer_tier=self.customer_tier,
            amount=self.amount,
            currency=self.currency,
            tags=self.tags,
            reasons=self.reasons,
            order_url=self.order_url,
            created_at=self.created_at,
            team=self.team,
            status=self.status,
            revision=self.revision,
        )

    def state(self) -> dict[str, Any]:
        """The fields this model owns, as MongoDB stores them (amount as text, like Alert)."""
        return {**self.model_dump(mode="json"), **self._times()}

    def _times(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
            "state_at": self.state_at,
        }


@dataclass(frozen=True, slots=True)
class Evolution:
    group: AlertGroup
    notice: Notice
    created: bool


def alert_id_for(order_no: str, team: str) -> str:
    """The dedupe key: one alert per order and team, whatever Kafka redelivers."""
    return f"{order_no}:{team}"


def teams_for(event: OrderTaggedAsRead, routing: Routing) -> list[str]:
    """The teams whose routes the order, as it is now, gives a reason to alert."""
    tags = {tag.name for tag in event.tags}
    return list(
        dict.fromkeys(r.team for r in routing.routes if r.matches(tags, event.facts.status))
    )


def evolve(
    group: AlertGroup | None,
    event: OrderTaggedAsRead,
    team: str,
    routes: list[Route],
    order_url_base: str,
    now: datetime | None = None,
) -> Evolution | None:
    """The team's alert for ``event``'s order after ``event``; None when nothing changes (the
    event was applied already, or there is no alert and no reason for one). A new alert is
    created ``now`` (the escalation clock starts when it is raised), else at the event's time."""
    event_id = str(event.event_id)
    if group is not None and event_id in group.applied_events:
        return None
    if group is not None and event.occurred_at < group.state_at:
        # older than what the alert shows: remember it was seen, change nothing
        return Evolution(_seen(group, event_id), Notice.NONE, created=False)
    tags = {tag.name for tag in event.tags}
    amount = event.facts.total
    # by identity: comparing route models field by field (``in`` a list) cost ~3 µs a route
    holding = {id(route) for route in routes if route.matches(tags, event.facts.status)}
    if group is None and not holding:
        return None
    at = event.occurred_at
    previous = {reason.route_id: reason for reason in group.causes} if group else {}
    changes: list[Change] = []
    causes: list[Reason] = []
    for route in routes:
        before = previous.get(route.id)
        if id(route) in holding:
            severity, why = route.severity_for(tags, amount)
            matched = set(route.when_tags_any)
            tag_reasons = [tag.reason for tag in event.tags if tag.name in matched]
            if before is None or not before.holds:
                changes.append(Change(at=at, event_id=event_id, change="reason_added",
                                      kind=route.kind, severity=severity))  # fmt: skip
                before = None
            causes.append(
                Reason(
                    route_id=route.id,
                    kind=route.kind,
                    severity=severity,
                    severity_why=why,
                    tag_reasons=tag_reasons,
                    since=before.since if before else at,
                )
            )
        elif before is not None:
            if before.holds:
                changes.append(
                    Change(at=at, event_id=event_id, change="reason_cleared", kind=route.kind)
                )
            causes.append(
                before if not before.holds else before.model_copy(update={"cleared_at": at})
            )
    held = [reason for reason in causes if reason.holds]
    lead = max(held, key=lambda r: SEVERITY_RANK[r.severity], default=None)
    severity = lead.severity if lead else (group.severity if group else Severity.INFO)
    notice = _notice(group, lead, severity)
    if notice is not Notice.NONE:
        changes.append(Change(at=at, event_id=event_id, change=notice.value, severity=severity))
    elif group is not None and severity != group.severity:
        change = "severity_lowered"  # told only when it rises
        changes.append(Change(at=at, event_id=event_id, change=change, severity=severity))
    status = _status(group, lead)
    leading = lead or _leading_of(group)
    fields: dict[str, Any] = {
        "alert_id": alert_id_for(event.order_no, team),
        "order_no": event.order_no,
        "customer_id": event.customer_id,
        "team": team,
        "kind": leading.kind,
        "kinds": [reason.kind for reason in held],
        "severity": severity,
        "status": status,
        "route_id": leading.route_id,
        "customer_tier": event.facts.customer_tier,
        "amount": amount,
        "currency": event.facts.currency,
        "tags": [tag.name for tag in event.tags],
        "reasons": [
            f"{reason.severity_why}: {'; '.join(reason.tag_reasons)}"
            if reason.tag_reasons
            else reason.severity_why
            for reason in sorted(held, key=lambda r: -SEVERITY_RANK[r.severity])
        ],
        "order_url": order_url(order_url_base, event.order_no),
        "updated_at": at,
        "resolved_at": _resolved_at(group, status, at),
        "revision": (group.revision if group else 0) + (notice is not Notice.NONE),
        "state_at": at,
        "applied_events": [*(group.applied_events if group else []), event_id][-KEEP_EVENT_IDS:],
        "causes": causes,
        "history": [*(group.history if group else []), *changes],
    }
    if group is None:
        return Evolution(AlertGroup(created_at=now or at, **fields), notice, created=True)
    return Evolution(group.model_copy(update=fields), notice, created=False)


def _notice(group: AlertGroup | None, lead: Reason | None, severity: Severity) -> Notice:
    if group is None:
        return Notice.RAISED
    was_open = group.status is not AlertStatus.RESOLVED
    if lead is None:
        return Notice.RESOLVED if was_open else Notice.NONE
    if not was_open:
        return Notice.REOPENED
    if SEVERITY_RANK[severity] > SEVERITY_RANK[group.severity]:
        return Notice.ESCALATED
    return Notice.NONE


def _status(group: AlertGroup | None, lead: Reason | None) -> AlertStatus:
    if lead is None:
        return AlertStatus.RESOLVED
    if group is None or group.status is AlertStatus.RESOLVED:
        return AlertStatus.OPEN
    return group.status  # an acknowledgement stays while the alert is open


def _resolved_at(group: AlertGroup | None, status: AlertStatus, at: datetime) -> datetime | None:
    if status is not AlertStatus.RESOLVED:
        return None
    if group is not None and group.status is AlertStatus.RESOLVED:
        return group.resolved_at
    return at


def _leading_of(group: AlertGroup | None) -> Reason:
    """When nothing holds, the alert keeps the kind it had (resolved alerts keep their name)."""
    assert group is not None  # no group and no reason returned early
    return next(
        (reason for reason in group.causes if reason.route_id == group.route_id), group.causes[0]
    )


def _seen(group: AlertGroup, event_id: str) -> AlertGroup:
    applied = [*group.applied_events, event_id][-KEEP_EVENT_IDS:]
    return group.model_copy(update={"applied_events": applied})


def tells(channel: AnyChannel, notice: Notice, severity: Severity, heard: bool) -> bool:
    """Does this change go to this channel? ``heard``: the channel was told of the alert, or
    is about to be. A raise goes where its severity is wanted; a later change (severity up,
    reopened) where updates are wanted or the channel has not heard of the alert yet; a
    resolution only where the channel heard of it and resolutions are wanted."""
    if notice is Notice.NONE:
        return False
    if notice is Notice.RESOLVED:
        return heard and channel.tells_resolved
    if heard and not channel.send_updates:
        return False
    return channel.wants(severity)

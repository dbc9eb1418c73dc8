"""What the tagger should have stored, recomputed from the order events read back from Kafka.

Customer figures are recomputed here from the events alone (in each partition's order, as the
tagger must apply them), not read from Redis: so tags given with wrong figures (Redis emptied,
a contribution counted twice) show up as differences. The rules are evaluated with the rule
engine itself: the engine is not what this run tests.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.notifier.grouping import AlertGroup, alert_id_for, evolve
from services.notifier.routing import Route
from services.tagger.figure_keys import KEEP_RECENT_ORDERS, recent_orders_stored
from services.tagger.order_record import OrderRecord
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleSet
from services.tagger.tagging import replaced_tags, tagged_event_for
from shared.events import (
    AppliedTag,
    EventType,
    OrderCreated,
    OrderTaggedAsRead,
    OrderUpdated,
    StatusChanged,
)
from shared.models import Order, OrderStatus

DAY_S = 86_400
WINDOW_DAYS = 365
REVERSING = {OrderStatus.CANCELLED, OrderStatus.RETURNED}
OrderEvent = OrderCreated | OrderUpdated | StatusChanged


@dataclass
class _Contribution:
    cents: int
    day: int
    applied: bool
    snapshot: FiguresSnapshot


@dataclass
class _Customer:
    """One customer's figures as the tagger's figures must evolve: each order counted once,
    taken back once when cancelled or returned."""

    count: int = 0
    spend: int = 0
    first_at: float | None = None
    last_at: float = 0.0
    by_day: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    recent: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, _Contribution] = field(default_factory=dict)

    def apply(self, order: Order) -> FiguresSnapshot:
        cents = int((order.pricing.total * 100).to_integral_exact())
        known = self.contributions.get(order.order_no)
        if known is not None:
            if known.applied and known.cents != cents:
                self.spend += cents - known.cents
                self.by_day[known.day] += cents - known.cents
                known.cents = cents
            return known.snapshot
        ts = order.created_at.timestamp()
        day = int(ts // DAY_S)
        self.by_day[day] += cents
        window = sum(v for d, v in self.by_day.items() if day - WINDOW_DAYS < d <= day)
        earlier = sorted((t for t in self.recent.values() if t <= ts), reverse=True)
        earlier = earlier[:KEEP_RECENT_ORDERS]
        snapshot = FiguresSnapshot(
            prior_order_count=self.count,
            prior_lifetime_spend=Decimal(self.spend) / 100,
            spend_365d=Decimal(window) / 100,
            recent_order_times=tuple(earlier),
            first_order_at=self.first_at,
        )
        self.recent[order.order_no] = ts
        if len(self.recent) > recent_orders_stored():  # as ``figures.lua`` trims
            oldest = min(self.recent, key=lambda no: (self.recent[no], no))
            del self.recent[oldest]
        self.count += 1
        self.spend += cents
        self.first_at = ts if self.first_at is None or ts < self.first_at else self.first_at
        self.last_at = max(self.last_at, ts)
        self.contributions[order.order_no] = _Contribution(cents, day, True, snapshot)
        return snapshot

    def reverse(self, order_no: str) -> None:
        known = self.contributions.get(order_no)
        if known is None or not known.applied:
            return
        self.count -= 1
        self.spend -= known.cents
        self.by_day[known.day] -= known.cents
        self.recent.pop(order_no, None)
        known.applied = False


@dataclass
class ExpectedOrder:
    order: Order
    status: OrderStatus
    tags: list[AppliedTag]
    snapshot: FiguresSnapshot
    event_ids: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # event ids that changed the tags
    alerts: dict[str, list[str]] = field(default_factory=dict)  # alert id -> channels
    alert_status: dict[str, str] = field(default_factory=dict)  # alert id -> status at the end

    @property
    def tag_names(self) -> set[str]:
        return {tag.name for tag in self.tags}


@dataclass
class Expected:
    orders: dict[str, ExpectedOrder] = field(default_factory=dict)
    unknown_status_changes: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> dict[str, list[str]]:
        return {a: c for o in self.orders.values() for a, c in o.alerts.items()}

    @property
    def alert_status(self) -> dict[str, str]:
        return {a: s for o in self.orders.values() for a, s in o.alert_status.items()}


def recompute(
    events: Iterable[OrderEvent], rules: RuleSet, routes: list[dict[str, Any]], max_tags: int
) -> Expected:
    """``events``: each partition's events in offset order (partitions one after another), each
    event once. ``routes``: the routing file's routes (plain dicts)."""
    customers: dict[str, _Customer] = defaultdict(_Customer)
    expected = Expected()
    teams: dict[str, list[Route]] = defaultdict(list)
    for route in routes:
        teams[route["team"]].append(Route.model_validate(route))
    groups: dict[str, AlertGroup] = {}
    for event in events:
        customer = customers[event.customer_id]
        record = expected.orders.get(event.order_no)
        if event.event_type is EventType.ORDER_CREATED and record is not None:
            continue  # created again (ingest's claim was lost): the tagger applies it once
        if isinstance(event, StatusChanged):
            if record is None:
                expected.unknown_status_changes.append(str(event.event_id))
                continue
            if event.status in REVERSING:
                customer.reverse(event.order_no)
            order = record.order.model_copy(update={"status": event.status})
            snapshot = record.snapshot
        else:
            order = event.order
            snapshot = customer.apply(order)
            if order.status in REVERSING:
                customer.reverse(order.order_no)
        facts = order_facts(order, snapshot, order.status)
        before = record.tags if record else []
        change = merge_tags(
            before,
            decide(rules, facts),
            exclusive_families=rules.exclusive_families,
            max_tags=max_tags,
            at=event.occurred_at,
        )
        if record is None:
            record = ExpectedOrder(order, order.status, change.tags, snapshot)
            expected.orders[order.order_no] = record
        record.order, record.status, record.tags = order, order.status, change.tags
        record.event_ids.append(str(event.event_id))
        # history as the tagger records it: a tag kept by name under another rule counts too
        if change.added or change.removed or replaced_tags(before, change.tags):
            record.changes.append(str(event.event_id))
        # the notifier's own decision (one alert per order and team), on the tagged event the
        # tagger must have published: an alert is expected where one is raised
        published = tagged_event_for(
            event.event_id,
            event.occurred_at,
            OrderRecord(order=order, status=order.status, tags=change.tags, figures=snapshot),
            change.added,
            [tag.name for tag in change.removed],
            rules.customer_tiers,
        )
        # as the notifier reads it off the topic
        tagged = OrderTaggedAsRead.model_validate_json(published.model_dump_json())
        for team, team_routes in teams.items():
            alert_id = alert_id_for(order.order_no, team)
            raised = evolve(groups.get(alert_id), tagged, team, team_routes, "http://chaos/")
            if raised is None:
                continue
            groups[alert_id] = raised.group
            record.alert_status[alert_id] = raised.group.status.value
            if raised.created:
                causes = {reason.route_id for reason in raised.group.causes}
                channels = [c for r in team_routes if r.id in causes for c in r.channels]
                record.alerts[alert_id] = list(dict.fromkeys(channels))
    return expected


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()

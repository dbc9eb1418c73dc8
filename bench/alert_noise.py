"""Alert noise on a steady-state simulator stream: what a support desk would receive.

The simulator's orders (with a customer base's year of history first, so the live part is in a
steady state) go through the tagger's rule engine, with customer figures recomputed as the
tagger keeps them, and each tagged order through the notifier's decisions, twice:

- **before**: the old model (one alert per order and *kind*, raised when the order gains the
  route's tag, with the route's fixed severity, never closed);
- **after**: the routing file given (default: the notifier's): one alert per order and *team*
  with merged reasons, calibrated severity, told again only when the severity rises, resolved
  when no reason holds.

No servers: the decisions are the services' own pure functions, so the figures are exact for the
stream. ``python -m bench.alert_noise`` prints a table and ``--json`` the figures.
"""

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from services.notifier.grouping import AlertGroup, Notice, alert_id_for, evolve, tells
from services.notifier.routing import Routing, WeComChannel, load_routing
from services.notifier.settings import DEFAULT_ROUTING_FILE
from services.simulator.stream import OrderStream
from services.tagger.order_record import OrderRecord
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleSet, load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tagging import REVERSING_STATUSES, tagged_event_for
from shared.events import OrderTagged, OrderTaggedAsRead, Severity
from shared.models import Order, OrderStatus
from tests.chaos.recompute import _Customer as CustomerFigures  # the independent recount

WATCHED_TAGS = [
    *("urgent", "vip", "high-value", "big-customer", "new-customer"),
    *("risk:velocity", "risk:amount-anomaly", "risk:new-customer-large-order"),
]
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
URL = "http://support.local/orders"
# The routing file before this change (one alert per order and kind, fixed severities).
BEFORE = {
    "routes": [
        {"id": "urgent-orders", "kind": "urgent", "severity": "critical", "team": "support",
         "when_tags_any": ["urgent"]},
        {"id": "vip-orders", "kind": "vip", "severity": "warning", "team": "vip-desk",
         "when_tags_any": ["vip"]},
        {"id": "fraud-risk", "kind": "fraud_risk", "severity": "critical", "team": "risk",
         "when_tags_any": ["risk:velocity", "risk:amount-anomaly",
                           "risk:new-customer-large-order"]},
    ]
}  # fmt: skip


@dataclass
class Tally:
    orders: int = 0
    alerts: Counter[str] = field(default_factory=Counter)  # by "kind/severity" when raised
    by_severity: Counter[str] = field(default_factory=Counter)  # by severity when raised
    notices: Counter[str] = field(default_factory=Counter)  # messages to the team's channel
    pushes_by_severity: Counter[str] = field(default_factory=Counter)
    max_severity: Counter[str] = field(default_factory=Counter)  # highest reached, per alert
    resolved: int = 0
    several_reasons: int = 0  # alerts that gathered more than one reason (kind)

    def per_1000(self, count: int) -> float:
        return round(1000 * count / max(self.orders, 1), 1)

    def summary(self) -> dict[str, Any]:
        alerts = sum(self.by_severity.values())
        pushes = sum(self.notices.values())
        return {
            "orders": self.orders,
            "alerts": alerts,
            "alerts_per_1000_orders": self.per_1000(alerts),
            "alerts_per_1000_by_kind_severity": {
                k: self.per_1000(v) for k, v in sorted(self.alerts.items())
            },
            "raised_per_1000_by_severity": {
                k: self.per_1000(v) for k, v in sorted(self.by_severity.items())
            },
            "highest_severity_per_1000": {
                k: self.per_1000(v) for k, v in sorted(self.max_severity.items())
            },
            "channel_messages_per_1000_orders": self.per_1000(pushes),
            "channel_messages_by_kind": dict(sorted(self.notices.items())),
            "critical_messages_per_1000_orders": self.per_1000(
                self.pushes_by_severity[Severity.CRITICAL.value]
            ),
            "critical_share_of_alerts": round(
                self.max_severity[Severity.CRITICAL.value] / max(alerts, 1), 3
            ),
            "resolved_by_themselves": self.resolved,
            "alerts_with_several_reasons": self.several_reasons,
        }


def tagged_stream(
    seed: int, orders: int, history: int, customers: int, rules: RuleSet
) -> tuple[list[OrderTagged], int]:
    """The tagger's output for the live part of the stream (history orders only build the
    customer figures), and how many live orders it holds."""
    stream = OrderStream(seed, customers, START, history=history)
    figures: dict[str, CustomerFigures] = {}
    records: dict[str, OrderRecord] = {}
    for payload in stream.history_orders():
        order = Order.model_validate(payload)
        customer = figures.setdefault(order.customer.id, CustomerFigures())
        customer.apply(order)
        if order.status in REVERSING_STATUSES:
            customer.reverse(order.order_no)
    tagged: list[OrderTagged] = []
    created = 0
    sequence = 0
    while created < orders:
        action = next(stream)
        sequence += 1
        if action["type"] == "status":
            record = records.get(action["order_no"])
            if record is None:
                continue
            status = OrderStatus(action["status"])
            order = record.order.model_copy(update={"status": status})
            if status in REVERSING_STATUSES:
                figures[order.customer.id].reverse(order.order_no)
            snapshot = record.figures
        else:
            order = Order.model_validate(action["order"])
            created += action["type"] == "order"
            customer = figures.setdefault(order.customer.id, CustomerFigures())
            snapshot = customer.apply(order)
            if order.status in REVERSING_STATUSES:
                customer.reverse(order.order_no)
        tagged.append(_tag(order, snapshot, records, rules, sequence))
    return tagged, created


def _tag(
    order: Order,
    snapshot: FiguresSnapshot,
    records: dict[str, OrderRecord],
    rules: RuleSet,
    sequence: int,
) -> OrderTagged:
    record = records.get(order.order_no)
    at = START + timedelta(seconds=sequence)
    change = merge_tags(
        record.tags if record else [],
        decide(rules, order_facts(order, snapshot, order.status)),
        exclusive_families=rules.exclusive_families,
        max_tags=50,
        at=at,
    )
    new = OrderRecord(
        order=order,
        status=order.status,
        tags=change.tags,
        figures=snapshot,
        contribution_reversed=False,
        applied_events=[],
        version=0,
    )
    records[order.order_no] = new
    event_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{order.order_no}/{sequence}")
    return tagged_event_for(
        event_id,
        at,
        new,
        change.added,
        [t.name for t in change.removed],
        rules.customer_tiers,
    )


def before(events: list[OrderTagged], orders: int) -> Tally:
    """The old model: one alert per order and kind, on the tag's first appearance."""
    routing = Routing.model_validate(BEFORE)
    tally = Tally(orders=orders)
    raised: set[str] = set()
    for event in events:
        added = {tag.name for tag in event.tags_added}
        for route in routing.routes:
            alert_id = f"{event.order_no}:{route.kind.value}"
            if alert_id in raised or added.isdisjoint(route.when_tags_any):
                continue
            raised.add(alert_id)
            tally.alerts[f"{route.kind.value}/{route.severity.value}"] += 1
            tally.by_severity[route.severity.value] += 1
            tally.max_severity[route.severity.value] += 1
            tally.notices["raised"] += 1
            tally.pushes_by_severity[route.severity.value] += 1
    return tally


def after(events: list[OrderTagged], orders: int, routing: Routing) -> Tally:
    """One alert per order and team; messages to one chat robot per team (its defaults:
    warning and up, no resolutions) only for changes a person must see."""
    tally = Tally(orders=orders)
    teams = routing.teams()
    groups: dict[str, AlertGroup] = {}
    told: set[str] = set()
    chat = WeComChannel(id="desk", type="wecom", url="https://qyapi.weixin.qq.com/x")
    # as the notifier's consumer decodes them
    for event in (OrderTaggedAsRead.model_validate_json(e.model_dump_json()) for e in events):
        for team, routes in teams.items():
            alert_id = alert_id_for(event.order_no, team)
            current = groups.get(alert_id)
            evolution = evolve(current, event, team, routes, URL)
            if evolution is None:
                continue
            group = evolution.group
            groups[alert_id] = group
            if evolution.created:
                tally.alerts[f"{group.kind.value}/{group.severity.value}"] += 1
                tally.by_severity[group.severity.value] += 1
            if tells(chat, evolution.notice, group.severity, alert_id in told):
                told.add(alert_id)
                tally.notices[evolution.notice.value] += 1
                tally.pushes_by_severity[group.severity.value] += 1
            tally.resolved += evolution.notice is Notice.RESOLVED
    for group in groups.values():
        tally.several_reasons += len({reason.kind for reason in group.causes}) > 1
        highest = max(
            (reason.severity for reason in group.causes),
            key=[Severity.INFO, Severity.WARNING, Severity.CRITICAL].index,
        )
        tally.max_severity[highest.value] += 1
    return tally


def measure(
    seed: int = 7,
    orders: int = 20_000,
    history: int = 20_000,
    customers: int = 8_000,
    routing_file: Path = DEFAULT_ROUTING_FILE,
    orders_per_hour: float = 400,
    agents: int = 2,
) -> dict[str, Any]:
    rules = load_rules(DEFAULT_RULES_FILE)
    events, live = tagged_stream(seed, orders, history, customers, rules)
    old = before(events, live).summary()
    new = after(events, live, load_routing(routing_file)).summary()
    per_agent_hour = orders_per_hour / 1000 / agents
    for figures in (old, new):
        figures["alerts_per_agent_hour"] = round(
            figures["alerts_per_1000_orders"] * per_agent_hour, 2
        )
        figures["channel_messages_per_agent_hour"] = round(
            figures["channel_messages_per_1000_orders"] * per_agent_hour, 2
        )
        figures["critical_messages_per_agent_hour"] = round(
            figures["critical_messages_per_1000_orders"] * per_agent_hour, 2
        )
    tags = Counter(tag.name for event in events for tag in event.tags_added)
    return {
        "stream": {
            "seed": seed,
            "live_orders": live,
            "history_orders": history,
            "customers": customers,
            "tagged_events": len(events),
            "orders_per_hour": orders_per_hour,
            "agents": agents,
            "tags_added_per_1000_orders": {
                name: round(1000 * tags[name] / live, 1) for name in WATCHED_TAGS
            },
        },
        "before": old,
        "after": new,
    }


def markdown(figures: dict[str, Any]) -> str:
    """The alert-noise section of benchmarks.md: before and after, per 1,000 orders."""
    stream, old, new = figures["stream"], figures["before"], figures["after"]
    rows = [
        ("alerts", "alerts_per_1000_orders"),
        ("channel messages", "channel_messages_per_1000_orders"),
        ("critical messages", "critical_messages_per_1000_orders"),
    ]
    by_severity = sorted(
        set(old["raised_per_1000_by_severity"]) | set(new["raised_per_1000_by_severity"])
    )
    lines = [
        "",
        "## Alert noise (steady-state simulator stream)",
        "",
        f"{stream['live_orders']:,} live orders after {stream['history_orders']:,} of history"
        f" (seed {stream['seed']}), through the default rules and the routing file, before and"
        " after calibrated severity and one alert per order and team (`bench/alert_noise.py`;"
        " channel: a chat robot with its defaults). Per agent-hour: at"
        f" {stream['orders_per_hour']:,.0f} orders an hour shared by {stream['agents']} agents.",
        "",
        "| per 1,000 orders | before | after |",
        "|---|---|---|",
        *(f"| {label} | {old[key]} | {new[key]} |" for label, key in rows),
        *(
            f"| alerts raised {severity} | {old['raised_per_1000_by_severity'].get(severity, 0)}"
            f" | {new['raised_per_1000_by_severity'].get(severity, 0)} |"
            for severity in by_severity
        ),
        f"| critical messages per agent-hour | {old['critical_messages_per_agent_hour']}"
        f" | {new['critical_messages_per_agent_hour']} |",
        f"| channel messages per agent-hour | {old['channel_messages_per_agent_hour']}"
        f" | {new['channel_messages_per_agent_hour']} |",
        "",
    ]
    return "\n".join(lines)


def main(
    seed: int = 7,
    orders: int = 20_000,
    history: int = 20_000,
    customers: int = 8_000,
    routing_file: Annotated[Path, typer.Option(help="the routing file to measure")] = (
        DEFAULT_ROUTING_FILE
    ),
    orders_per_hour: Annotated[float, typer.Option(help="the shop's busy-hour volume")] = 400,
    agents: Annotated[int, typer.Option(help="people on the desk in that hour")] = 2,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    figures = measure(seed, orders, history, customers, routing_file, orders_per_hour, agents)
    if as_json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        return
    print(yaml.safe_dump(figures, sort_keys=False, allow_unicode=True))


if __name__ == "__main__":
    typer.run(main)

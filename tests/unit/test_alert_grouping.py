"""Calibrated severity and one alert per order and team (services/notifier/grouping.py): pure."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.notifier.grouping import AlertGroup, Notice, evolve, teams_for, tells
from services.notifier.routing import (
    RoutingFileError,
    WebhookChannel,
    WeComChannel,
    load_routing,
)
from services.notifier.settings import DEFAULT_ROUTING_FILE
from shared.events import (
    AlertKind,
    AlertStatus,
    AppliedTag,
    OrderFacts,
    OrderTagged,
    OrderTaggedAsRead,
    Severity,
    TagSource,
)
from shared.models import OrderStatus
from tests.notifier_fakes import as_read

ROUTING = load_routing(DEFAULT_ROUTING_FILE)
TEAMS = ROUTING.teams()
T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)
URL = "http://x/orders"


def event(
    tags: list[str],
    amount: str = "150.00",
    status: OrderStatus = OrderStatus.PENDING,
    minute: int = 0,
    order_no: str = "SO-1",
) -> OrderTaggedAsRead:
    at = T0 + timedelta(minutes=minute)
    applied = [
        AppliedTag(name=n, source=TagSource.RULE, rule_id=f"r.{n}", reason=f"{n} because", at=at)
        for n in tags
    ]
    event = OrderTagged(
        event_id=uuid.uuid4(),
        occurred_at=at,
        source_event_id=uuid.uuid4(),
        order_no=order_no,
        customer_id="C-1",
        tags_added=applied,
        tags=applied,
        facts=OrderFacts(status=status, total=Decimal(amount), currency="CNY"),
    )
    return as_read(event)


def step(group: AlertGroup | None, tagged: OrderTaggedAsRead, team: str = "support") -> tuple:
    evolution = evolve(group, tagged, team, TEAMS[team], URL)
    assert evolution is not None
    return evolution.group, evolution.notice


@pytest.mark.parametrize(
    ("team", "tags", "amount", "severity"),
    [
        # urgent: who the customer is and how much is at stake
        ("support", ["urgent", "new-customer"], "150.00", Severity.INFO),
        ("support", ["urgent", "vip"], "300.00", Severity.WARNING),
        ("support", ["urgent", "vip"], "1500.00", Severity.CRITICAL),
        ("support", ["urgent", "high-value"], "1500.00", Severity.CRITICAL),
        ("support", ["urgent", "returning-customer"], "3000.00", Severity.WARNING),
        ("support", ["urgent", "new-customer"], "12000.00", Severity.CRITICAL),
        # a VIP ordering is worth knowing; a large VIP order is worth a look
        ("support", ["vip"], "800.00", Severity.INFO),
        ("support", ["vip"], "6000.00", Severity.WARNING),
        # risk: the signal and the amount at stake
        ("risk", ["risk:amount-anomaly"], "800.00", Severity.INFO),
        ("risk", ["risk:amount-anomaly"], "6000.00", Severity.WARNING),
        ("risk", ["risk:amount-anomaly"], "25000.00", Severity.CRITICAL),
        ("risk", ["risk:velocity"], "300.00", Severity.WARNING),
        ("risk", ["risk:velocity"], "6000.00", Severity.CRITICAL),
        ("risk", ["risk:new-customer-large-order"], "20000.00", Severity.CRITICAL),
    ],
)
def test_severity_follows_the_combination_of_signals(
    team: str, tags: list[str], amount: str, severity: Severity
) -> None:
    group, notice = step(None, event(tags, amount), team)

    assert (group.severity, notice) == (severity, Notice.RAISED)
    assert group.alert_id == f"SO-1:{team}"


def test_an_urgent_vip_order_outranks_an_urgent_first_time_small_basket() -> None:
    vip, _ = step(None, event(["urgent", "vip"], "1500.00"))
    first_timer, _ = step(None, event(["urgent", "new-customer"], "150.00"))

    assert (vip.severity, first_timer.severity) == (Severity.CRITICAL, Severity.INFO)
    assert vip.reasons[0].startswith("urgent order of a VIP or high-value customer")


def test_an_urgent_vip_order_is_one_alert_with_both_reasons() -> None:
    group, _ = step(None, event(["urgent", "vip"], "1500.00"))

    assert teams_for(event(["urgent", "vip"]), ROUTING) == ["support"]
    assert group.kinds == [AlertKind.URGENT, AlertKind.VIP]
    assert group.kind is AlertKind.URGENT  # the most severe reason names it
    assert len(group.reasons) == 2


def test_a_later_reason_joins_the_open_alert_and_raises_its_severity() -> None:
    group, _ = step(None, event(["urgent"], "300.00"))
    later, notice = step(group, event(["urgent", "vip"], "300.00", minute=5))

    assert (group.severity, later.severity) == (Severity.INFO, Severity.WARNING)
    assert notice is Notice.ESCALATED
    assert (later.alert_id, later.revision) == (group.alert_id, 2)
    assert later.kinds == [AlertKind.URGENT, AlertKind.VIP]
    assert [c.change for c in later.history] == [
        "reason_added",
        "raised",
        "reason_added",
        "escalated",
    ]


def test_a_reason_of_no_higher_severity_updates_the_alert_without_telling_again() -> None:
    group, _ = step(None, event(["urgent", "vip"], "1500.00"))
    again, notice = step(group, event(["urgent", "vip", "high-value"], "1500.00", minute=1))

    assert notice is Notice.NONE
    assert again.revision == group.revision == 1
    assert "high-value" in again.tags


def test_the_alert_resolves_when_the_order_ships_and_keeps_its_history() -> None:
    group, _ = step(None, event(["urgent"], "3000.00"))
    shipped, notice = step(group, event([], "3000.00", OrderStatus.SHIPPED, minute=30))

    assert notice is Notice.RESOLVED
    assert shipped.status is AlertStatus.RESOLVED
    assert shipped.resolved_at == T0 + timedelta(minutes=30)
    assert shipped.severity is Severity.WARNING  # what it was while it held
    assert [c.change for c in shipped.history][-2:] == ["reason_cleared", "resolved"]
    [reason] = shipped.causes
    assert reason.cleared_at == T0 + timedelta(minutes=30)


def test_a_status_the_route_does_not_watch_clears_a_reason_whose_tag_stays() -> None:
    group, _ = step(None, event(["vip"], "6000.00"))
    shipped, notice = step(group, event(["vip"], "6000.00", OrderStatus.SHIPPED, minute=10))

    assert notice is Notice.RESOLVED
    assert shipped.kinds == []


def test_one_reason_clearing_leaves_the_alert_open_at_the_others_severity() -> None:
    group, _ = step(None, event(["urgent", "vip"], "6000.00"))
    shipped_early, notice = step(group, event(["vip"], "6000.00", minute=10))

    assert notice is Notice.NONE  # lower: shown, not sent
    assert (shipped_early.status, shipped_early.severity) == (AlertStatus.OPEN, Severity.WARNING)
    assert shipped_early.kinds == [AlertKind.VIP]
    assert shipped_early.history[-1].change == "severity_lowered"


def test_a_resolved_alert_reopens_when_a_reason_comes_back() -> None:
    group, _ = step(None, event(["urgent"], "3000.00"))
    resolved, _ = step(group, event([], "3000.00", OrderStatus.CANCELLED, minute=5))
    reopened, notice = step(resolved, event(["urgent"], "3000.00", minute=6))

    assert notice is Notice.REOPENED
    assert (reopened.status, reopened.revision, reopened.resolved_at) == (
        AlertStatus.OPEN,
        3,
        None,
    )


def test_the_same_event_again_changes_nothing() -> None:
    first = event(["urgent"], "3000.00")
    group, _ = step(None, first)

    assert evolve(group, first, "support", TEAMS["support"], URL) is None


def test_an_event_older_than_the_alert_state_is_only_remembered() -> None:
    shipped_at_10 = event([], "3000.00", OrderStatus.SHIPPED, minute=10)
    urgent_at_5 = event(["urgent"], "3000.00", minute=5)
    group, _ = step(None, event(["urgent"], "3000.00"))
    resolved, _ = step(group, shipped_at_10)

    late = evolve(resolved, urgent_at_5, "support", TEAMS["support"], URL)

    assert late is not None
    assert late.notice is Notice.NONE
    assert late.group.status is AlertStatus.RESOLVED
    assert str(urgent_at_5.event_id) in late.group.applied_events


def test_an_acknowledged_alert_stays_acknowledged_when_its_severity_rises() -> None:
    group, _ = step(None, event(["urgent"], "300.00"))
    acknowledged = group.model_copy(update={"status": AlertStatus.ACKNOWLEDGED})
    later, notice = step(acknowledged, event(["urgent", "vip"], "1500.00", minute=2))

    assert (later.status, notice) == (AlertStatus.ACKNOWLEDGED, Notice.ESCALATED)


def test_an_order_without_a_reason_raises_nothing() -> None:
    assert evolve(None, event(["new-customer"]), "support", TEAMS["support"], URL) is None
    shipped_vip = event(["vip"], "9000.00", OrderStatus.SHIPPED)
    assert evolve(None, shipped_vip, "support", TEAMS["support"], URL) is None


CHAT = WeComChannel(id="chat", type="wecom", url="http://chat/")
HOOK = WebhookChannel(id="hook", type="webhook", url="http://hook/", unsigned=True)


def test_channels_are_told_what_their_settings_ask_for() -> None:
    # info stays on the page; warning and up go out
    assert not tells(CHAT, Notice.RAISED, Severity.INFO, heard=False)
    assert tells(CHAT, Notice.RAISED, Severity.WARNING, heard=False)
    # an alert that rose to a wanted severity reaches the channel then
    assert tells(CHAT, Notice.ESCALATED, Severity.CRITICAL, heard=False)
    # resolutions: only where the alert was told; webhooks by default, chat robots not
    assert tells(HOOK, Notice.RESOLVED, Severity.WARNING, heard=True)
    assert not tells(HOOK, Notice.RESOLVED, Severity.WARNING, heard=False)
    assert not tells(CHAT, Notice.RESOLVED, Severity.WARNING, heard=True)
    chatty = CHAT.model_copy(update={"send_resolved": True, "min_severity": Severity.INFO})
    assert tells(chatty, Notice.RESOLVED, Severity.INFO, heard=True)
    assert tells(chatty, Notice.RAISED, Severity.INFO, heard=False)
    once = HOOK.model_copy(update={"send_updates": False})
    assert not tells(once, Notice.ESCALATED, Severity.CRITICAL, heard=True)
    assert not tells(once, Notice.REOPENED, Severity.CRITICAL, heard=True)
    assert tells(once, Notice.ESCALATED, Severity.CRITICAL, heard=False)
    assert not tells(HOOK, Notice.NONE, Severity.CRITICAL, heard=True)


def test_two_routes_of_one_team_and_kind_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    route = "{id: ID, kind: urgent, severity: info, team: support, when_tags_any: [urgent]}"
    path.write_text(f"routes: [{route.replace('ID', 'a')}, {route.replace('ID', 'b')}]")

    with pytest.raises(RoutingFileError, match="one route per team and kind"):
        load_routing(path)


def test_a_severity_rule_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "routes: [{id: a, kind: urgent, severity: info, team: support, when_tags_any: [urgent],"
        " severity_rules: [{severity: critical, why: w, when: {amount_over: 5}}]}]"
    )

    with pytest.raises(RoutingFileError, match=r"routes\.0\.severity_rules\.0\.when\.amount_over"):
        load_routing(path)

"""The chaos run's expectation: tags, history and alerts recomputed from order events, with
customer figures recounted from the events alone (no Redis)."""

from decimal import Decimal

from services.tagger.rules.book import RuleBook
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.events import OrderCreated, OrderUpdated, StatusChanged
from shared.models import OrderStatus
from tests.chaos.recompute import recompute
from tests.factories import at, make_order

RULES = RuleBook(DEFAULT_RULES_FILE).current
ROUTES = [
    {
        "id": "urgent",
        "kind": "urgent",
        "severity": "info",
        "team": "support",
        "when_tags_any": ["urgent"],
        "open_while_status": ["pending", "processed"],
        "channels": ["desk"],
    },
    {
        "id": "fraud",
        "kind": "fraud_risk",
        "severity": "info",
        "team": "risk",
        "when_tags_any": ["risk:velocity"],
        "channels": ["desk", "risk"],
    },
]


def created(order_no: str, minutes: float, total: str = "100.00", **extra: object) -> OrderCreated:
    order = make_order(order_no, created_at=at(minutes), pricing={"total": total}, **extra)
    return OrderCreated(order=order)


def changed(order_no: str, status: OrderStatus) -> StatusChanged:
    return StatusChanged(order_no=order_no, customer_id="C-1", status=status)


def test_a_second_order_sees_the_first_and_a_cancelled_one_no_longer_counts() -> None:
    events = [
        created("A", 0, "100.00"),
        changed("A", OrderStatus.CANCELLED),
        created("B", 60, "250.00"),
        created("C", 120, "50.00"),
    ]

    expected = recompute(events, RULES, ROUTES, max_tags=20)

    a, b, c = (expected.orders[no] for no in "ABC")
    assert "new-customer" in a.tag_names
    assert "status:cancelled" in a.tag_names
    assert b.snapshot.prior_order_count == 0  # A was taken back before B came
    assert "new-customer" in b.tag_names
    assert c.snapshot.prior_order_count == 1
    assert c.snapshot.prior_lifetime_spend == Decimal("250.00")
    assert "returning-customer" in c.tag_names


def test_a_redelivered_event_changes_nothing_and_history_counts_real_changes() -> None:
    first = created("A", 0, shipping={"method": "express", "province": "浙江"})
    events = [first, changed("A", OrderStatus.PROCESSED), changed("A", OrderStatus.SHIPPED)]

    expected = recompute(events, RULES, ROUTES, max_tags=20)

    order = expected.orders["A"]
    assert order.status is OrderStatus.SHIPPED
    assert "urgent" not in order.tag_names  # urgency expires once shipped
    assert len(order.changes) == 3  # created, status:processed, shipped (urgent dropped)
    assert order.alerts == {"A:support": ["desk"]}  # raised once, resolved when shipped


def test_a_burst_raises_one_fraud_alert_per_order_that_gains_the_tag() -> None:
    events = [created(f"B{i}", i) for i in range(6)]

    expected = recompute(events, RULES, ROUTES, max_tags=20)

    assert "risk:velocity" not in expected.orders["B3"].tag_names
    assert "risk:velocity" in expected.orders["B4"].tag_names  # the fifth within 10 minutes
    assert expected.alerts == {
        "B4:risk": ["desk", "risk"],
        "B5:risk": ["desk", "risk"],
    }


def test_a_status_change_before_its_order_is_reported() -> None:
    expected = recompute([changed("X", OrderStatus.SHIPPED)], RULES, ROUTES, max_tags=20)

    assert expected.unknown_status_changes
    assert "X" not in expected.orders


def test_an_order_created_again_is_not_applied_again() -> None:
    """As the tagger: ingest's claim lost, the shop's first copy sent again changes nothing."""
    first = created("A", 0, "100.00")
    again = OrderCreated(order=first.order)  # the same order, a new event
    updated = OrderUpdated(order=first.order.model_copy(update={"notes": "gift"}))
    cancel = changed("A", OrderStatus.CANCELLED)
    events = [first, cancel, again, updated, changed("A", OrderStatus.CANCELLED)]
    events.append(created("B", 60, "250.00"))

    expected = recompute(events, RULES, ROUTES, max_tags=20)

    assert "status:cancelled" in expected.orders["A"].tag_names
    assert expected.orders["A"].order.notes == "gift"  # an update is applied
    assert str(again.event_id) not in expected.orders["A"].event_ids
    assert str(updated.event_id) in expected.orders["A"].event_ids
    assert expected.orders["B"].snapshot.prior_order_count == 0  # A still taken back

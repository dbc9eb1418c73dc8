from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.events import OrderCreated, StatusChanged, order_event_adapter, order_event_key
from shared.models import Order, OrderStatus
from shared.money import cents_text, from_cents, to_cents
from tests.factories import order_payload


def error_locations(error: ValidationError) -> set[str]:
    return {".".join(str(part) for part in e["loc"]) for e in error.errors()}


def test_valid_order_round_trips_through_json_unchanged() -> None:
    order = Order.model_validate(order_payload())

    again = Order.model_validate_json(order.model_dump_json())

    assert again == order
    assert again.pricing.total == Decimal("100.00")


def test_money_is_decimal_and_serialised_as_string_not_float() -> None:
    order = Order.model_validate(order_payload(pricing={"total": "0.10", "tax": "0.20"}))

    assert isinstance(order.pricing.total + order.pricing.tax, Decimal)
    assert order.pricing.total + order.pricing.tax == Decimal("0.30")
    assert '"total":"0.10"' in order.model_dump_json()


@pytest.mark.parametrize(
    ("field_path", "bad_value"),
    [
        ("order_no", ""),
        ("order_no", "has spaces"),
        ("customer", "not an object"),
        ("lines", []),
        ("pricing", {"total": "-1"}),
        ("pricing", {"total": "1.001"}),
        ("pricing", {"total": "10", "currency": "yuan"}),
        ("status", "lost"),
        ("created_at", "2026-11-24T08:00:00"),  # no time zone
        ("notes", "x" * 10_000_000),
        ("channel", 42),
    ],
)
def test_each_invalid_field_is_rejected_with_its_name(field_path: str, bad_value: Any) -> None:
    payload = order_payload(**{field_path: bad_value})

    with pytest.raises(ValidationError) as caught:
        Order.model_validate(payload)

    assert any(loc.startswith(field_path) for loc in error_locations(caught.value))


def test_negative_quantity_is_rejected_naming_the_line_field() -> None:
    payload = order_payload()
    payload["lines"][0]["quantity"] = -2

    with pytest.raises(ValidationError) as caught:
        Order.model_validate(payload)

    assert "lines.0.quantity" in error_locations(caught.value)


def test_unknown_fields_are_refused_at_every_level() -> None:
    payload = order_payload(surprise=1)
    payload["customer"]["nickname"] = "x"

    with pytest.raises(ValidationError) as caught:
        Order.model_validate(payload)

    assert {"surprise", "customer.nickname"} <= error_locations(caught.value)


def test_updated_before_created_is_refused() -> None:
    with pytest.raises(ValidationError, match="updated_at"):
        Order.model_validate(order_payload(updated_at="2020-01-01T00:00:00+00:00"))


def test_order_events_round_trip_through_the_shared_adapter() -> None:
    created = OrderCreated(order=Order.model_validate(order_payload()))
    changed = StatusChanged(order_no="SO-1", customer_id="C-1", status=OrderStatus.SHIPPED)

    for event in (created, changed):
        assert order_event_adapter.validate_json(event.model_dump_json()) == event


def test_events_are_keyed_by_customer_so_a_customer_stays_on_one_partition() -> None:
    created = OrderCreated(order=Order.model_validate(order_payload()))
    changed = StatusChanged(order_no="SO-1", customer_id="C-1", status=OrderStatus.SHIPPED)

    assert order_event_key(created) == order_event_key(changed) == b"C-1"


def test_unknown_schema_version_is_refused() -> None:
    body = OrderCreated(order=Order.model_validate(order_payload())).model_dump(mode="json")
    body["schema_version"] = 2

    with pytest.raises(ValidationError, match="schema_version"):
        order_event_adapter.validate_python(body)


def test_money_round_trips_through_cents() -> None:
    assert to_cents(Decimal("1234.56")) == 123456
    assert from_cents(123456) == Decimal("1234.56")
    assert from_cents(b"-250") == Decimal("-2.5")
    assert to_cents(from_cents("99999999999999")) == 99999999999999
    assert [cents_text(c) for c in (0, 5, 123450, -250)] == ["0.00", "0.05", "1234.50", "-2.50"]


def test_identifiers_keep_to_a_safe_alphabet() -> None:
    for unsafe in ("A/../../x", "bad no", "x%2F", " SO-1", "-SO", "a" * 65):
        with pytest.raises(ValidationError) as refused:
            Order.model_validate(order_payload(unsafe))
        assert refused.value.errors()[0]["loc"] == ("order_no",), unsafe
    assert Order.model_validate(order_payload("SO-2026:11_24.a-1")).order_no == "SO-2026:11_24.a-1"

"""Ingest serialises each order once: the event's JSON is the record value and the order's JSON
inside it gives the order's digest. Both must be byte for byte what serialising each on its own
gives, and the digest (kept in Redis for the retention period) must not change between releases."""

import json

import pytest

from services.ingest.idempotency import _record, digest_of, order_digest
from services.ingest.publishing import event_value, order_json_in
from shared.events import OrderCreated, OrderUpdated
from shared.models import Order

# Characters JSON escapes, text that looks like the event's own fields, and CJK text.
TRICKY = {
    "order_no": "SO-1",
    "customer": {"id": "C-9", "name": '李娜 "order":{', "vip": True},
    "lines": [
        {
            "sku": "PH-1",
            "name": '手机 \\ ,"order":{',
            "category": "electronics",
            "quantity": 2,
            "unit_price": "1999.50",
        }
    ],
    "pricing": {"currency": "CNY", "total": "3999.00"},
    "notes": '加急 "quoted" \\ \n ,"order":{"x":1}',
    "created_at": "2026-11-26T08:00:00+08:00",
}
# What main's order_digest (sha256 of order.model_dump_json()) gave for TRICKY before #14.
TRICKY_DIGEST = "617ac354abdff0e5c71bd9d15586a5fcd974edee31a759ed4e4bac118134c321"


@pytest.mark.parametrize("kind", [OrderCreated, OrderUpdated])
def test_the_order_inside_an_event_value_is_the_order_serialised_alone(
    kind: type[OrderCreated],
) -> None:
    order = Order.model_validate(TRICKY)
    event = kind(order=order)

    value = event_value(event)

    assert value == event.model_dump_json().encode()
    assert order_json_in(value) == order.model_dump_json().encode()
    assert digest_of(order_json_in(value)) == order_digest(order)


def test_an_order_digest_is_the_one_earlier_releases_kept() -> None:
    assert order_digest(Order.model_validate(TRICKY)) == TRICKY_DIGEST


def test_a_claim_record_is_the_json_of_its_fields() -> None:
    record = _record("C-9:a.b_c", "d" * 64, "e-1", "pending")

    assert json.loads(record) == {
        "digest": "d" * 64,
        "event_id": "e-1",
        "customer_id": "C-9:a.b_c",
        "state": "pending",
    }
    assert record == json.dumps(json.loads(record))  # the format earlier releases wrote

"""Ingest serialises each order once: the event's JSON is the record value and the order's JSON
inside it gives the order's digest. Both must be byte for byte what serialising each on its own
gives, and the digest (kept in Redis for the retention period) must not change between releases."""

import json
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest import idempotency
from services.ingest.idempotency import ClaimRecord, _record, digest_of, order_digest
from services.ingest.publishing import event_value, new_event_ids, new_orders
from shared.events import OrderCreated, OrderUpdated, order_event_adapter, order_event_key
from shared.models import IDENTIFIER_PATTERN, Order

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
def test_an_event_value_is_the_events_json(kind: type[OrderCreated]) -> None:
    event = kind(order=Order.model_validate(TRICKY))

    assert event_value(event) == event.model_dump_json().encode()


def _variants() -> list[Order]:
    """Orders whose JSON differs in length and in what it escapes."""
    orders = [Order.model_validate(TRICKY)]
    for n, notes in enumerate(["", "x" * 300, '"order":{"order_no":"SO-1"}}', "\\u0000 é"]):
        orders.append(
            Order.model_validate({**TRICKY, "order_no": f"SO-{n}{'9' * n}", "notes": notes})
        )
    return orders


def test_new_order_values_are_each_events_own_json() -> None:
    orders = _variants()

    made = new_orders(orders)

    for new, order in zip(made, orders, strict=True):
        event = order_event_adapter.validate_json(new.value)
        assert isinstance(event, OrderCreated)
        assert event.order == order
        assert new.value == event.model_dump_json().encode()
        assert (new.key, new.order_no) == (order_event_key(event), order.order_no)
        assert new.event_id == str(event.event_id)
        assert new.order_json == order.model_dump_json().encode()
        assert digest_of(new.order_json) == order_digest(order)
    assert len({new.event_id for new in made}) == len(orders)
    assert len({order_event_adapter.validate_json(new.value).occurred_at for new in made}) == 1


def test_new_event_ids_are_random_uuids_in_their_string_form() -> None:
    ids = new_event_ids(1000)

    uuids = [UUID(i) for i in ids]
    assert len(set(ids)) == 1000
    assert ids == [str(u) for u in uuids]
    assert {u.version for u in uuids} == {4}
    assert {u.variant for u in uuids} == {"specified in RFC 4122"}


def test_an_order_digest_is_the_one_earlier_releases_kept() -> None:
    assert order_digest(Order.model_validate(TRICKY)) == TRICKY_DIGEST


@pytest.fixture
def json_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON records releases before wrote (still read: ``test_claim_records``)."""
    monkeypatch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", False)


@pytest.mark.usefixtures("json_claims")
def test_a_claim_record_is_the_json_of_its_fields() -> None:
    record = _record("C-9:a.b_c", "d" * 64, "e-1", "pending")

    assert json.loads(record) == {
        "digest": "d" * 64,
        "event_id": "e-1",
        "customer_id": "C-9:a.b_c",
        "state": "pending",
    }
    assert record == json.dumps(json.loads(record))  # the format earlier releases wrote


@given(st.from_regex(IDENTIFIER_PATTERN, fullmatch=True))
def test_a_record_of_any_customer_id_is_what_json_dumps_gives(customer_id: str) -> None:
    fields = {"digest": "d" * 64, "event_id": "e-1", "customer_id": customer_id, "state": "x"}

    with pytest.MonkeyPatch.context() as patch:  # hypothesis runs it many times per fixture
        patch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", False)
        assert _record(customer_id, "d" * 64, "e-1", "x") == json.dumps(fields)
    compact = ClaimRecord.parse(_record(customer_id, "d" * 64, "e-1", "pending").encode())
    assert (compact.customer_id, compact.event_id) == (customer_id, "e-1")  # written now

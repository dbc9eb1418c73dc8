"""The stored order leaves out what its document holds beside it, and reads back whole."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import bson
import pytest
from bson.binary import Binary
from bson.codec_options import CodecOptions

from services.tagger.order_record import OrderRecord
from services.tagger.rules.facts import FiguresSnapshot, facts_of_stored, order_facts
from shared import stored_order
from shared.models import Order, OrderStatus
from shared.stored_order import (
    FIGURE_NAMES,
    applied_event_ids,
    figures_record,
    order_as_ingested,
    order_created_at,
)
from tests.factories import make_order

AS_MONGODB = CodecOptions(tz_aware=True)  # the services' clients read times as aware UTC


def _through_mongodb(document: dict[str, Any]) -> dict[str, Any]:
    """The document as MongoDB gives it back: times in whole milliseconds, UTC."""
    return bson.decode(bson.encode(document), codec_options=AS_MONGODB)


def _stored(order: Order) -> dict[str, Any]:
    """A new order as the tagger stores it, read back from MongoDB."""
    return _through_mongodb(
        OrderRecord(order, OrderStatus.PENDING, [], FiguresSnapshot()).to_document()
    )


def test_the_stored_order_holds_no_number_or_customer_id_and_reads_back_as_it_was() -> None:
    order = make_order("SO-9")
    record = OrderRecord(order, OrderStatus.PENDING, [], FiguresSnapshot())
    document = record.to_document()

    assert "order_no" not in document["order"]
    assert "id" not in document["order"]["customer"]
    assert (document["order_no"], document["customer_id"]) == ("SO-9", order.customer.id)
    assert OrderRecord.from_document(document).order == order
    assert list(order_as_ingested(document)) == ["order_no", *document["order"], "created_at"]


def test_an_order_stored_whole_before_reads_the_same() -> None:
    order = make_order("SO-8")
    document = OrderRecord(order, OrderStatus.PENDING, [], FiguresSnapshot()).to_document()
    document["order"] = order.model_dump(mode="json", exclude_none=True, exclude_defaults=True)

    assert order_as_ingested(document) == document["order"]
    assert OrderRecord.from_document(document).order == order


def test_an_order_created_in_utc_is_stored_without_its_time_and_reads_it_from_the_document() -> (
    None
):
    order = make_order("SO-7", created_at="2026-11-24T08:00:00.123Z")
    document = _stored(order)
    assert "created_at" not in document["order"]

    assert order_as_ingested(document)["created_at"] == order.model_dump(mode="json")["created_at"]
    assert OrderRecord.from_document(document).order == order
    assert order_created_at(document) == order.created_at


def test_an_order_stored_with_its_creation_time_before_reads_the_same() -> None:
    """The form every release before this writer wrote (expand, then contract)."""
    order = make_order("SO-5", created_at="2026-11-24T08:00:00.123Z")
    document = _stored(order)
    document["order"]["created_at"] = "2026-11-24T08:00:00.123000Z"

    assert OrderRecord.from_document(document).order == order
    assert order_created_at(document) == order.created_at


def test_a_time_finer_than_a_millisecond_is_kept_in_the_stored_order() -> None:
    """A BSON date holds milliseconds: the document's would not give this one back."""
    order = make_order("SO-4", created_at="2026-11-24T08:00:00.123456Z")
    document = _stored(order)
    assert document["order"]["created_at"] == "2026-11-24T08:00:00.123456Z"
    assert OrderRecord.from_document(document).order == order
    assert order_created_at(document) == order.created_at


def test_a_shops_local_creation_time_reads_back_with_its_offset() -> None:
    created_at = datetime(2026, 11, 24, 16, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    order = make_order("SO-6", created_at=created_at.isoformat())
    document = _stored(order)

    assert document["order"]["created_at"] == "2026-11-24T16:00:00.123456+08:00"
    restored = OrderRecord.from_document(document).order
    assert restored == order
    assert restored.created_at.utcoffset() == timedelta(hours=8)
    assert order_created_at(document) == created_at


def test_applied_event_ids_stored_as_uuids_read_back_as_the_events_named_them() -> None:
    """The form written now (``WRITE_BINARY_EVENT_IDS``), beside the strings written before:
    an id that is not a UUID's own string form stays a string."""
    ids = [str(uuid4()), "manual-7", str(uuid4()).upper(), str(uuid4())]
    record = OrderRecord(
        make_order("SO-3"), OrderStatus.PENDING, [], FiguresSnapshot(), applied_events=ids
    )
    document = _through_mongodb(record.to_document())
    stored = document["applied_events"]

    assert [type(e) for e in stored] == [Binary, str, str, Binary]
    assert len(bson.encode({"ids": stored})) < len(bson.encode({"ids": ids})) - 2 * 19
    assert applied_event_ids(document) == ids
    assert OrderRecord.from_document(document).applied_events == ids
    assert applied_event_ids({**document, "applied_events": ids}) == ids  # written before
    assert applied_event_ids({}) == []


def test_the_release_before_stored_applied_event_ids_as_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stored_order, "WRITE_BINARY_EVENT_IDS", False)
    ids = [str(uuid4())]
    record = OrderRecord(
        make_order("SO-2"), OrderStatus.PENDING, [], FiguresSnapshot(), applied_events=ids
    )
    document = _through_mongodb(record.to_document())
    assert document["applied_events"] == ids
    assert OrderRecord.from_document(document).applied_events == ids


FIGURES = FiguresSnapshot(
    prior_order_count=6,
    prior_lifetime_spend=Decimal("10145.00"),
    spend_365d=Decimal("10292.00"),
    recent_order_times=(1793498307.0, 1793497530.5, 1793496426.0),
    first_order_at=1793492163.0,
)


@pytest.mark.parametrize("short", [False, True])
def test_an_orders_figures_read_back_in_either_form(
    short: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under shorter names (``FIGURE_NAMES``: written now) or the snapshot's own (the
    release before's), the figures read back the same, for the tagger, its facts and the
    figures script (``figures_record``)."""
    monkeypatch.setattr(stored_order, "WRITE_SHORT_FIGURE_NAMES", short)
    record = OrderRecord(make_order("SO-9"), OrderStatus.PENDING, [], FIGURES)
    document = _through_mongodb(record.to_document())
    stored = document["figures"]

    assert set(stored) == (set(FIGURE_NAMES.values()) if short else set(FIGURE_NAMES))
    assert OrderRecord.from_document(document).figures == FIGURES
    assert FiguresSnapshot.from_record(figures_record(stored)) == FIGURES
    assert set(figures_record(stored)) == set(FIGURE_NAMES)  # what the script reads
    assert facts_of_stored(document) == order_facts(record.order, FIGURES, record.status)


def test_the_shorter_figure_names_take_bytes_off_an_order(monkeypatch: pytest.MonkeyPatch) -> None:
    record = OrderRecord(make_order("SO-9"), OrderStatus.PENDING, [], FIGURES)
    short = len(bson.encode(record.to_document()))
    monkeypatch.setattr(stored_order, "WRITE_SHORT_FIGURE_NAMES", False)  # the release before's
    long = len(bson.encode(record.to_document()))
    assert long - short == sum(len(n) - len(s) for n, s in FIGURE_NAMES.items())

"""The orders' store on the wire: a batch's history is one insert (an upsert costs the local
server several times as much), none for new orders' first changes (the orders keep them), and
an entry an earlier attempt stored (a crash between the history and the orders write, a
redelivered batch) is replaced by this derivation."""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.store import OrderStore
from shared.events import AppliedTag, TagSource
from shared.settings import Settings
from tests.factories import make_order
from tests.integration.command_log import CommandLog

pytestmark = pytest.mark.integration

AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[tuple[OrderStore, CommandLog]]:
    log = CommandLog(settings.mongo_database)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000, event_listeners=[log]
    )
    try:
        store = OrderStore(client[settings.mongo_database])
        await store.ensure_indexes()
        log.counts.clear()
        yield store, log
    finally:
        await client.drop_database(settings.mongo_database)
        await client.close()


def tag(name: str) -> AppliedTag:
    return AppliedTag(
        name=name, source=TagSource.RULE, rule_id=name, rule_version=1, reason="test", at=AT
    )


def tagged(order_no: str, *names: str) -> tuple[OrderRecord, HistoryEntry]:
    """A new order's first change, as the tagger makes it (``first_at``: its event's time)."""
    order = make_order(order_no)
    tags = [tag(name) for name in names]
    record = OrderRecord(
        order, order.status, tags, FiguresSnapshot(), applied_events=["e1"], first_at=AT
    )
    return record, HistoryEntry(order_no, "e1", AT, tags, [])


def changed(record: OrderRecord, event_id: str, *names: str) -> tuple[OrderRecord, HistoryEntry]:
    """A stored order's next change: tags ``names`` added."""
    added = [tag(name) for name in names]
    later = replace(
        record, tags=[*record.tags, *added], applied_events=[*record.applied_events, event_id]
    )
    return later, HistoryEntry(record.order.order_no, event_id, LATER, added, [])


async def test_a_batch_of_new_orders_writes_the_orders_alone(
    counted: tuple[OrderStore, CommandLog], run_id: str
) -> None:
    """A new order's first change is kept on the order (its event id and time), not as a
    history entry of its own: one insert a batch, and the history reads as before."""
    store, log = counted
    batch = [tagged(f"{run_id}-{n}", "urgent") for n in range(5)]

    assert await store.save([r for r, _ in batch], [h for _, h in batch]) == set()

    assert log.counts == {"insert orders": 1}
    assert await store.tag_history.count_documents({}) == 0
    records = await store.load([r.order.order_no for r, _ in batch])
    entries = await store.history_of_orders(records)
    assert [(e["order_no"], e["event_id"], e["at"], e["version"]) for e in entries] == [
        (r.order.order_no, "e1", AT, 1) for r, _ in batch
    ]


async def stored_new_order(store: OrderStore, order_no: str) -> OrderRecord:
    """A new order tagged "urgent" by its first event, saved and read back."""
    record, entry = tagged(order_no, "urgent")
    await store.save([record], [entry])
    return (await store.load([order_no]))[order_no]


async def test_the_next_change_is_an_entry_and_the_first_reads_from_the_order(
    counted: tuple[OrderStore, CommandLog], run_id: str
) -> None:
    store, log = counted
    stored = await stored_new_order(store, f"{run_id}-1")
    assert stored.first_at == AT
    log.counts.clear()

    second, entry = changed(stored, "e2", "vip")
    assert await store.save([second], [entry]) == set()

    assert log.counts == {"insert tag_history": 1, "update orders": 1}
    records = await store.load([stored.order.order_no])
    assert (records[stored.order.order_no].stored or {})["first_at"] == AT
    entries = await store.history_of_orders(records)
    assert [(e["event_id"], e["at"], e["version"], e.get("added")) for e in entries] == [
        ("e1", AT, 1, None),  # the order's first change: it added all the order then held
        ("e2", LATER, 2, [{"tag": "vip"}]),
    ]


async def test_an_entry_an_earlier_attempt_stored_is_replaced_by_this_derivation(
    counted: tuple[OrderStore, CommandLog], run_id: str
) -> None:
    store, log = counted
    stored = await stored_new_order(store, f"{run_id}-1")
    # the attempt before a crash stored its history entry, not the order
    await store.tag_history.insert_one(
        {"order_no": stored.order.order_no, "event_id": "e2", "at": LATER, "added": [{"tag": "x"}]}
    )
    second, entry = changed(stored, "e2", "vip")
    log.counts.clear()

    assert await store.save([second], [entry]) == set()

    assert log.counts == {"insert tag_history": 1, "update tag_history": 1, "update orders": 1}
    entries = await store.history_of_orders(await store.load([stored.order.order_no]))
    assert [(e["event_id"], e["version"], e.get("added")) for e in entries] == [
        ("e1", 1, None),
        ("e2", 2, [{"tag": "vip"}]),
    ]

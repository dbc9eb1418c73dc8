"""The orders' store on the wire: a batch's history is one insert (an upsert costs the local
server several times as much), and an entry an earlier attempt stored (a crash between the
history and the orders write, a redelivered batch) is replaced by this derivation."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.store import HistoryEntry, OrderRecord, OrderStore
from shared.events import AppliedTag, TagSource
from shared.settings import Settings
from tests.factories import make_order
from tests.integration.command_log import CommandLog

pytestmark = pytest.mark.integration

AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


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
    order = make_order(order_no)
    tags = [tag(name) for name in names]
    record = OrderRecord(order, order.status, tags, FiguresSnapshot(), applied_events=["e1"])
    return record, HistoryEntry(order_no, "e1", AT, tags, [])


async def test_a_batch_of_new_orders_is_one_insert_per_collection(
    counted: tuple[OrderStore, CommandLog], run_id: str
) -> None:
    store, log = counted
    batch = [tagged(f"{run_id}-{n}", "urgent") for n in range(5)]

    assert await store.save([r for r, _ in batch], [h for _, h in batch]) == set()

    assert log.counts == {"insert tag_history": 1, "insert orders": 1}
    assert await store.tag_history.count_documents({}) == 5


async def test_an_entry_an_earlier_attempt_stored_is_replaced_by_this_derivation(
    counted: tuple[OrderStore, CommandLog], run_id: str
) -> None:
    store, log = counted
    crashed, fresh = f"{run_id}-crashed", f"{run_id}-fresh"
    # the attempt before a crash stored its history entry, not the order
    await store.tag_history.insert_one(
        {"order_no": crashed, "event_id": "e1", "at": AT, "added": [{"tag": "stale"}]}
    )
    batch = [tagged(crashed, "urgent", "vip"), tagged(fresh, "urgent")]
    log.counts.clear()

    assert await store.save([r for r, _ in batch], [h for _, h in batch]) == set()

    assert log.counts == {"insert tag_history": 1, "update tag_history": 1, "insert orders": 1}
    entries = sorted(await store.history_of_orders([crashed, fresh]), key=lambda e: e["order_no"])
    assert [(e["order_no"], e["event_id"], e.get("added")) for e in entries] == [
        (crashed, "e1", None),  # the order's first change: it added all the order held
        (fresh, "e1", None),
    ]
    assert all(e["version"] == 1 for e in entries)

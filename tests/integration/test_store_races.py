"""Two writers of the same event on one order (a job replica that took over from a stalled
one, a consumer of a partition that moved): the loser's retry must not erase the winner's
history."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.store import OrderStore
from tests.factories import make_order

pytestmark = pytest.mark.integration


async def test_a_write_that_lost_to_another_writer_of_the_same_event_keeps_its_history(
    mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    order = make_order(f"{run_id}-1")
    stored = OrderRecord(order, order.status, [], FiguresSnapshot())
    assert await store.save([stored], []) == set()
    [read_by_both] = (await store.load([order.order_no])).values()

    event_id = "job:storm-warning"
    changed = replace(read_by_both, applied_events=[event_id])
    entry = HistoryEntry(order.order_no, event_id, datetime.now(UTC), [], [], by="ops")
    assert await store.save([changed], [entry]) == set()  # the replica that took over
    lost = await store.save([changed], [entry])  # the stalled one, from the same read

    assert lost == {order.order_no}
    history = await mongo_db["tag_history"].count_documents(
        {"order_no": order.order_no, "event_id": event_id}
    )
    assert history == 1


async def test_a_write_that_lost_to_another_event_takes_its_history_back(
    mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    """The retry decides again from the winner's order: it may change nothing, and then no
    entry of the lost attempt may stay."""
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    order = make_order(f"{run_id}-2")
    assert await store.save([OrderRecord(order, order.status, [], FiguresSnapshot())], []) == set()
    [read_by_both] = (await store.load([order.order_no])).values()

    def entry(event_id: str) -> HistoryEntry:
        return HistoryEntry(order.order_no, event_id, datetime.now(UTC), [], [], by="ops")

    winner = replace(read_by_both, applied_events=["edit:a"])
    loser = replace(read_by_both, applied_events=["edit:b"])
    assert await store.save([winner], [entry("edit:a")]) == set()
    assert await store.save([loser], [entry("edit:b")]) == {order.order_no}

    kept = await mongo_db["tag_history"].distinct("event_id", {"order_no": order.order_no})
    assert kept == ["edit:a"]

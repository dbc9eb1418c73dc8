"""A write the local MongoDB-wire server acknowledged survives a SIGKILL of that server."""

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import BulkWriteError

from tests.integration.servers import MongoServer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fsync", [True, False], ids=["fsync", "file-only"])
async def test_acknowledged_inserts_and_updates_survive_kill_9(tmp_path: Path, fsync: bool) -> None:
    server = MongoServer(tmp_path, fsync=fsync)
    await server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        server.url, w=1, serverSelectionTimeoutMS=10_000
    )
    try:
        orders = client["durability"]["orders"]
        await asyncio.gather(
            *(orders.insert_one({"_id": f"single-{i}", "n": i}) for i in range(200))
        )
        await orders.insert_many([{"_id": f"bulk-{i}", "n": i} for i in range(500)], ordered=False)
        await orders.update_many({"n": {"$lt": 100}}, {"$set": {"updated": True}})
        await orders.bulk_write(
            [UpdateOne({"_id": f"bulk-{i}"}, {"$inc": {"n": 1000}}) for i in range(400, 500)]
        )
    finally:
        await server.kill()  # at once: every write above was acknowledged a moment ago
        await client.close()

    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000)
    try:
        orders = client["durability"]["orders"]
        stored = await orders.count_documents({})
        updated = await orders.count_documents({"updated": True})
        incremented = await orders.count_documents({"n": {"$gte": 1000}})
    finally:
        await client.close()
        await server.kill()

    assert (stored, updated, incremented) == (700, 200, 100)


async def test_a_kill_mid_write_never_keeps_a_document_without_its_index(tmp_path: Path) -> None:
    """A SIGKILL during a stream of inserts keeps each write whole: a document on disk is in
    its unique index too, so inserting the same key again is refused, never a second copy.
    (The tagger's retried batch relies on this; the stock backend's background commit could
    persist a document without its index entry.)"""
    server = MongoServer(tmp_path, fsync=False)
    await server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        server.url, serverSelectionTimeoutMS=10_000, retryWrites=False
    )
    keys = [f"order-{i:05d}" for i in range(20_000)]
    orders = client["atomicity"]["orders"]
    await orders.create_index("key", unique=True)

    async def insert_until_killed(part: list[str]) -> None:
        for start in range(0, len(part), 50):
            try:
                await orders.insert_many([{"key": k} for k in part[start : start + 50]])
            except Exception:  # the kill: what was written is checked below
                return

    writers = [asyncio.create_task(insert_until_killed(keys[w::4])) for w in range(4)]
    await asyncio.sleep(2.5)  # a few of the old backend's once-a-second background commits
    await server.kill()
    await asyncio.gather(*writers)
    await client.close()

    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000)
    try:
        orders = client["atomicity"]["orders"]
        stored_before = await orders.count_documents({})
        # a retry of everything: what survived must be refused by the unique index
        with contextlib.suppress(BulkWriteError):
            await orders.insert_many([{"key": k} for k in keys], ordered=False)
        cursor = await orders.aggregate(
            [{"$group": {"_id": "$key", "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}]
        )
        copies = await cursor.to_list(None)
        stored = await orders.count_documents({})
    finally:
        await client.close()
        await server.kill()

    assert 0 < stored_before < len(keys), "the kill should interrupt the stream"
    assert copies == [], f"{len(copies)} keys stored twice: {copies[:3]}"
    assert stored == len(keys)

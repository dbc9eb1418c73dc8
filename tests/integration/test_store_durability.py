"""A write the local MongoDB-wire server acknowledged survives a SIGKILL of that server."""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import Binary, CodecOptions, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tests.integration.servers import MongoServer, StockMongoServer

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


# The client of the killed server may leave a socket its interrupted writes had open for the
# collector to close (ResourceWarning): the client's, not the store's; what the store kept is
# what this test checks.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
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

    acknowledged = 0
    a_quarter_in = asyncio.Event()

    async def insert_until_killed(part: list[str]) -> None:
        nonlocal acknowledged
        for start in range(0, len(part), 50):
            try:
                await orders.insert_many([{"key": k} for k in part[start : start + 50]])
            except Exception:  # the kill: what was written is checked below
                return
            acknowledged += 50
            if acknowledged >= len(keys) // 4:
                a_quarter_in.set()

    writers = [asyncio.create_task(insert_until_killed(keys[w::4])) for w in range(4)]
    # killed mid-stream, whatever the machine's speed (a fixed wait let a fast server finish)
    await asyncio.wait_for(a_quarter_in.wait(), 120)
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


async def test_unique_indexes_of_a_file_written_by_the_stock_backend_still_hold(
    tmp_path: Path,
) -> None:
    """The launcher compares unique-index keys by their serialised form kept once, where the
    library's H2 backend serialises both keys on every comparison: the order must be the very
    same, or a data file written before would miss its own keys (lookups finding nothing,
    duplicates let in). Written by the stock backend, read and extended by the launcher."""
    keys = [f"order-{i:05d}" for i in range(1_500)]

    def document(i: int, key: str) -> dict[str, Any]:
        return {"_id": f"id-{i}", "key": key, "tags": [f"{key}/a", f"{key}/b"], "v": i % 7}

    stock = StockMongoServer(tmp_path)
    await stock.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stock.url, serverSelectionTimeoutMS=10_000
    )
    try:
        orders = client["compat"]["orders"]
        await orders.create_index("key", unique=True)
        await orders.create_index("tags", unique=True)  # multikey, as the orders' tag_keys
        await orders.create_index([("_id", 1), ("v", 1)], unique=True)
        await orders.insert_many([document(i, k) for i, k in enumerate(keys)], ordered=False)
    finally:
        await client.close()
        await asyncio.to_thread(stock.terminate_sync)

    server = MongoServer(tmp_path)
    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000)
    try:
        orders = client["compat"]["orders"]
        found = [await orders.find_one({"key": k}, {"_id": 1}) for k in keys[::7]]
        by_tag = [await orders.find_one({"tags": f"{k}/b"}, {"_id": 1}) for k in keys[3::11]]
        refused = 0
        for i, key in enumerate(keys[::50]):
            duplicates: list[dict[str, Any]] = [{"key": key}, {"tags": [f"{key}/a"]}]
            for j, duplicate in enumerate(duplicates):
                try:
                    await orders.insert_one({"_id": f"again-{i}-{j}", **duplicate})
                except DuplicateKeyError:
                    refused += 1
        await orders.insert_many([document(i, f"new-{i:05d}") for i in range(2_000, 2_300)])
        await orders.update_many({"v": 3}, {"$set": {"key_copy": True}})
    finally:
        await client.close()
        await server.kill()

    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000)
    try:
        orders = client["compat"]["orders"]
        old_again = await orders.find_one({"key": keys[-1]}, {"_id": 1})
        new_found = await orders.find_one({"tags": "new-02299/a"}, {"_id": 1})
        with contextlib.suppress(DuplicateKeyError):
            await orders.insert_one({"key": "new-02100"})
        stored = await orders.count_documents({})
    finally:
        await client.close()
        await server.kill()

    assert found == [{"_id": f"id-{i}"} for i in range(0, len(keys), 7)]
    assert by_tag == [{"_id": f"id-{i}"} for i in range(3, len(keys), 11)]
    assert refused == 2 * len(keys[::50]), "a key the stock backend stored was let in again"
    assert old_again == {"_id": f"id-{len(keys) - 1}"}
    assert new_found == {"_id": "id-2299"}
    assert stored == len(keys) + 300


def every_bson_type(i: int) -> dict[str, Any]:
    """A document with each BSON type the server keeps, nested and in arrays; one in ten with
    a regular expression too (which the launcher stores as the stock backend does: the
    library's regular expression has no equality to check a round trip by)."""
    document = {
        "_id": f"doc-{i}",
        "int32": i,
        "int64": Int64(2**40 + i),
        "double": i + 0.5,
        "negative_zero": -0.0,
        "decimal": Decimal128(f"{i}.10"),
        "text": f"订单 {i} ✓",
        "flag": i % 2 == 0,
        "nothing": None,
        "at": datetime(2026, 11, 26, 8, 30, i % 60, 123000, tzinfo=UTC),
        "oid": ObjectId(f"{i:024x}"),
        "binary": bytes(range(i % 256)),
        "uuid": Binary.from_uuid(uuid.UUID(int=i + 1)),
        "timestamp": Timestamp(1_700_000_000 + i, 1),
        "bounds": [MinKey(), MaxKey()],
        "nested": {"list": [1, Int64(2), 3.0, "x", {"deep": [[], {}]}], "empty": {}},
    }
    if i % 10 == 0:
        document["regex"] = Regex(f"^o{i}", "i")
    return document


async def test_documents_read_back_with_every_field_and_type_after_a_restart(
    tmp_path: Path,
) -> None:
    """The launcher stores documents in its own encoding: whatever a client wrote reads back
    the same (values, types, field order), also after updates and a SIGKILL, beside
    documents the library's stock backend wrote."""
    stock = StockMongoServer(tmp_path)
    await stock.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stock.url, serverSelectionTimeoutMS=10_000, tz_aware=True
    )
    try:
        await client["types"]["docs"].insert_many([every_bson_type(i) for i in range(100)])
    finally:
        await client.close()
        await asyncio.to_thread(stock.terminate_sync)

    server = MongoServer(tmp_path)
    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000, tz_aware=True)
    try:
        docs = client["types"]["docs"]
        await docs.insert_many([every_bson_type(i) for i in range(100, 300)])
        await docs.update_many({"int32": {"$lt": 150}}, {"$inc": {"int64": 1}, "$set": {"x": 1}})
    finally:
        await client.close()
        await server.kill()

    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000, tz_aware=True)
    try:
        stored = await client["types"]["docs"].find({}).sort("int32", 1).to_list(None)
    finally:
        await client.close()
        await server.kill()

    expected = []
    for i in range(300):
        document = every_bson_type(i)
        if i < 150:
            document["int64"] = Int64(document["int64"] + 1)
            document["x"] = 1
        expected.append(document)
    assert len(stored) == len(expected)
    for got, want in zip(stored, expected, strict=True):
        assert list(got) == list(want)
        assert got == want
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}


async def test_collection_stats_size_the_documents_stored_now_also_after_a_restart(
    tmp_path: Path,
) -> None:
    """The launcher adds up a collection's size when asked (collStats, dbStats) instead of
    keeping it on every write: it still answers what the documents weigh as BSON, through
    inserts, updates that grow and shrink them, deletes, and a restart."""
    server = MongoServer(tmp_path)
    await server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        server.url, serverSelectionTimeoutMS=10_000
    )
    try:
        docs = client["sizes"]["docs"]
        await docs.insert_many([{"_id": i, "text": "字" * i, "n": i} for i in range(200)])
        await docs.update_many({"n": {"$lt": 50}}, {"$set": {"more": list(range(20))}})
        await docs.update_many({"n": {"$gte": 150}}, {"$unset": {"text": ""}})
        await docs.delete_many({"n": {"$gte": 190}})
        before = await _sizes(client)
    finally:
        await client.close()
        await server.kill()

    await server.start()
    client = AsyncMongoClient(server.url, serverSelectionTimeoutMS=10_000)
    try:
        after = await _sizes(client)
    finally:
        await client.close()
        await server.kill()

    assert before == after
    stats, database_size, stored = before
    assert stats == (190, stored)
    assert database_size >= stored  # with the database's other collections (its indexes')


async def _sizes(client: AsyncMongoClient[dict[str, Any]]) -> tuple[tuple[int, int], int, int]:
    """collStats' count and size, dbStats' data size, and the documents' BSON bytes read."""
    database = client["sizes"]
    stats = await database.command("collStats", "docs")
    database_stats = await database.command("dbStats")
    raw = database.get_collection("docs", codec_options=CodecOptions(RawBSONDocument))
    stored = sum([len(doc.raw) async for doc in raw.find({})])
    return (stats["count"], stats["size"]), int(database_stats["dataSize"]), stored

"""A write the local MongoDB-wire server acknowledged survives a SIGKILL of that server."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, UpdateOne

from tests.integration.servers import free_port, kill_hard, start_mongo_wire

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fsync", [True, False], ids=["fsync", "file-only"])
async def test_acknowledged_inserts_and_updates_survive_kill_9(tmp_path: Path, fsync: bool) -> None:
    port, data_file, log = free_port(), tmp_path / "mongo.h2", tmp_path / "mongo.log"
    server = start_mongo_wire(port, data_file, log, fsync=fsync)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{port}", w=1, serverSelectionTimeoutMS=10_000
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
        kill_hard(server)  # at once: every write above was acknowledged a moment ago
        await client.close()

    server = start_mongo_wire(port, data_file, log, fsync=fsync)
    client = AsyncMongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=10_000)
    try:
        orders = client["durability"]["orders"]
        stored = await orders.count_documents({})
        updated = await orders.count_documents({"updated": True})
        incremented = await orders.count_documents({"n": {"$gte": 1000}})
    finally:
        await client.close()
        kill_hard(server)

    assert (stored, updated, incremented) == (700, 200, 100)

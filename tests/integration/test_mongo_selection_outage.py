"""A MongoDB client doing steady work rides out a SIGKILL of its server that lasts longer than
server selection waits: once the server is back, work goes on. (PyMongo's async client on
Python 3.11 could instead wait for ever on its topology lock: an operation cancelled while its
selection wait timed out left the lock taken; see ``shared.mongo.condition_wait_within``.)"""

import asyncio
import contextlib
from collections import Counter
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError

from shared.mongo import make_mongo_client
from shared.settings import Settings
from shared.tasks import cancel_and_wait
from tests.conftest import eventually
from tests.integration.servers import MongoServer

pytestmark = pytest.mark.integration

SELECTION_TIMEOUT_MS = 1500
LANES = 6
WRITERS_PER_LANE = 4


class SteadyWork:
    """What the services do with one client: lanes of concurrent writes where one failure
    cancels the lane's other writes (the tagger's batch lanes), and readiness probes that
    give up on a ping after a short time (``/readyz``)."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]]) -> None:
        self.orders = client["selection_outage"]["orders"]
        self.admin = client.admin
        self.counts: Counter[str] = Counter()
        self._next = 0

    async def _write(self) -> None:
        self._next += 1
        await self.orders.insert_one({"_id": self._next})

    async def lane(self) -> None:
        while True:
            writes = [asyncio.create_task(self._write()) for _ in range(WRITERS_PER_LANE)]
            try:
                await asyncio.gather(*writes)
                self.counts["written"] += WRITERS_PER_LANE
            except PyMongoError as error:
                for write in writes:
                    write.cancel()
                await asyncio.gather(*writes, return_exceptions=True)
                kind = (
                    "selection timed out"
                    if isinstance(error, ServerSelectionTimeoutError)
                    else "failed"
                )
                self.counts[kind] += 1

    async def probe(self) -> None:
        while True:
            try:
                async with asyncio.timeout(0.3):
                    await self.admin.command("ping")
                self.counts["probe ok"] += 1
            except TimeoutError:
                self.counts["probe cancelled"] += 1
            except PyMongoError:
                self.counts["probe failed"] += 1
            await asyncio.sleep(0.05)


async def test_steady_work_resumes_after_the_server_was_down_past_server_selection(
    mongo_server: MongoServer,
) -> None:
    settings = Settings(mongo_url=mongo_server.url, mongo_write_concern=1, mongo_journal=False)
    client = make_mongo_client(settings, serverSelectionTimeoutMS=SELECTION_TIMEOUT_MS)
    work = SteadyWork(client)
    tasks = [asyncio.create_task(work.lane()) for _ in range(LANES)]
    tasks += [asyncio.create_task(work.probe()) for _ in range(3)]
    try:

        async def written_at_least(n: int) -> bool:
            return work.counts["written"] >= n

        await eventually(lambda: written_at_least(200), within=60)
        await mongo_server.kill()

        async def selections_timed_out() -> bool:
            # down past serverSelectionTimeoutMS: every lane saw its selection time out, and
            # probes were cancelled mid-selection
            return (
                work.counts["selection timed out"] >= 2 * LANES
                and work.counts["probe cancelled"] >= 10
            )

        await eventually(selections_timed_out, within=60)
        await mongo_server.start()
        resumed_from = work.counts["written"]

        await eventually(lambda: written_at_least(resumed_from + 200), within=90)
        async with asyncio.timeout(30):  # a fresh operation is served too
            assert await client.admin.command("ping") == {"ok": 1.0}
    finally:
        await cancel_and_wait(tasks)
        with contextlib.suppress(Exception):  # a client stuck on its lock cannot close either
            async with asyncio.timeout(10):
                await client.close()

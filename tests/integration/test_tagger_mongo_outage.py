"""The MongoDB-wire server killed with SIGKILL mid-stream: the tagger's consumer retries with
backoff, commits nothing it did not store, and finishes the stream by itself once the server is
back: nothing lost, nothing doubled."""

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect
from redis.asyncio import Redis

from services.tagger.app import create_app as create_tagger
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.accounting import (
    assert_figures_recount_and_tags,
    assert_history_once_per_change,
    stored_count,
)
from tests.integration.conftest import publish_events, running, wait_for_orders
from tests.integration.servers import MongoServer

pytestmark = pytest.mark.integration


async def test_mongo_killed_mid_stream_the_tagger_waits_and_finishes_exactly(
    mongo_server: MongoServer,
    tagger_settings: TaggerSettings,
    redis_client: Redis,
    run_id: str,
) -> None:
    settings = tagger_settings.model_copy(update={"mongo_url": mongo_server.url})
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_server.url, tz_aware=True, serverSelectionTimeoutMS=2000
    )
    db = client[settings.mongo_database]
    events, expected = order_stream(1500, customers=200, seed=31, prefix=run_id)
    created = sum(isinstance(e, OrderCreated) for e in events)
    try:
        async with running(create_tagger(settings)):
            await publish_events(settings, events)

            async def some_tagged() -> bool:
                return await stored_count(db) >= 300

            await eventually(some_tagged, within=90)
            before_kill = await stored_count(db)
            await mongo_server.kill()
            await mongo_server.start()

            async def reachable() -> bool:  # this client's pooled connections died too
                try:
                    await db.command("ping")
                except AutoReconnect:
                    return False
                return True

            await eventually(reachable, within=30)
            await wait_for_orders(db, created, len(events), within=240)

        assert before_kill < created, "the kill came too late to interrupt anything"
        await assert_figures_recount_and_tags(redis_client, db, expected)
        await assert_history_once_per_change(db)
    finally:
        await client.close()

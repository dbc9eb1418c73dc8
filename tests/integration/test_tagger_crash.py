"""A tagger killed with SIGKILL mid-stream and restarted: every effect exactly once."""

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bench.harness import free_port
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated, OrderTagged
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.conftest import (
    assert_figures_exact,
    publish_events,
    read_topic,
    wait_for_orders,
)
from tests.integration.servers import service_env, start_module

pytestmark = pytest.mark.integration


async def start_tagger(
    settings: TaggerSettings, log: Any = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    env = service_env(
        settings,
        ORDERTAG_TAGGER_GROUP_ID=settings.tagger_group_id,
        ORDERTAG_TAGGER_PORT=str(free_port()),
        ORDERTAG_TAGGER_BATCH_MAX_RECORDS="50",
        ORDERTAG_LOG_LEVEL="INFO",
    )
    return await start_module("services.tagger", env=env, log=log)


async def test_sigkill_mid_stream_leaves_every_order_tagged_once_and_figures_exact(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    events, expected = order_stream(3000, customers=200, seed=13, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]
    await publish_events(tagger_settings, events)

    first = await start_tagger(tagger_settings)
    try:

        async def some_tagged() -> bool:
            return await mongo_db["orders"].count_documents({}) >= 300

        await eventually(some_tagged, within=60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        tagged_at_kill = await mongo_db["orders"].count_documents({})
        assert tagged_at_kill < len(created), "the kill came too late to interrupt anything"

        second = await start_tagger(tagger_settings)
        try:
            await wait_for_orders(mongo_db, len(created), len(events), within=180)
        finally:
            second.terminate()
            await second.wait()
    finally:
        if first.returncode is None:
            first.kill()

    await assert_figures_exact(redis_client, expected)
    # each tag was added to each order once (none of these orders loses a tag and regains it)
    added = await mongo_db["tag_history"].aggregate(
        [
            {"$unwind": "$added"},
            {
                "$group": {
                    "_id": {"o": "$order_no", "t": "$added.tag"},
                    "n": {"$sum": 1},
                }
            },
            {"$match": {"n": {"$gt": 1}}},
        ]
    )
    assert await added.to_list(None) == []
    # tagged events may be republished after the crash, but never with a new id
    # republished records count towards the first len(events): keep reading a little longer
    records = await read_topic(
        tagger_settings, tagger_settings.topics.tagged, len(events), extra_wait=3
    )
    ids = [OrderTagged.model_validate_json(r.value).event_id for r in records]
    assert len(set(ids)) == len(events)


async def test_sigterm_mid_stream_stops_cleanly_and_a_restart_finishes_exactly(
    tmp_path: Path,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    events, expected = order_stream(2000, customers=100, seed=17, prefix=run_id)
    await publish_events(tagger_settings, events)

    log_path = tmp_path / "tagger.log"
    with log_path.open("w") as log:
        first = await start_tagger(tagger_settings, log)

        async def some_tagged() -> bool:
            return await mongo_db["orders"].count_documents({}) >= 200

        await eventually(some_tagged, within=60)
        first.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):  # inside the deploy's 30 s grace period
            await first.wait()
    # uvicorn ran the lifespan's shutdown (consumer stopped, batch finished) before exiting
    assert "Application shutdown complete" in log_path.read_text()

    second = await start_tagger(tagger_settings)
    try:
        created = sum(isinstance(e, OrderCreated) for e in events)
        await wait_for_orders(mongo_db, created, len(events))
    finally:
        second.terminate()
        await second.wait()

    await assert_figures_exact(redis_client, expected)

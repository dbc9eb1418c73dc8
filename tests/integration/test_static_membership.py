"""Static membership (KIP-345, ``ORDERTAG_KAFKA_GROUP_INSTANCE_ID``): a tagger consumer killed
mid-stream and started again under the same id gets its own partitions back and the other
members of the group keep theirs, with no rebalance; the batch it was killed in is handed back
to it, and every order is tagged exactly once. On the real local Kafka, tagger processes as
pods of a StatefulSet. What a restart costs with and without it: ``python -m
bench.membership_bench`` (figures in docs/operations.md)."""

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bench.membership_bench import consumer_group
from services.tagger.settings import TaggerSettings
from shared.tasks import cancel_and_wait
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.conftest import stored_orders
from tests.integration.test_tagger_rebalance import Stream, assert_exactly_once

pytestmark = pytest.mark.integration


async def test_a_static_member_killed_mid_stream_gets_its_partitions_back_without_a_rebalance(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
    tmp_path: Path,
) -> None:
    events, expected = order_stream(400, customers=40, seed=31, prefix=run_id)
    stream = Stream(tagger_settings, events)
    back = stream.gate(1 / 2)  # half the stream waits for the restarted member
    async with consumer_group(tagger_settings, tmp_path, 3, static=True) as group:
        restarted, others = group.members[0], group.members[1:]
        held = restarted.holds()
        assigned = [len(member.assignments()) for member in others]
        publishing = asyncio.create_task(stream.run())
        try:

            async def tagging() -> bool:
                return len(await stored_orders(mongo_db)) >= 40

            await eventually(tagging, within=120)
            await group.restart(restarted, signal.SIGKILL)  # no goodbye, same instance id
            back.set()
            await publishing
        finally:
            await cancel_and_wait([publishing])
        await assert_exactly_once(tagger_settings, mongo_db, redis_client, events, expected)

    assert restarted.holds() == held
    assert [len(member.assignments()) for member in others] == assigned

"""The chaos run's drain judges the run over only once every delivery settled: a claim the
notifier's kill interrupted stays ``sending`` until the sweeper takes it over, a lease later,
and a drain that looked only for ``pending`` ended before it (the run then counted the claim's
alerts as never delivered)."""

import random
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.kafka import delete_topics, ensure_topics
from tests.chaos.environment import Environment
from tests.chaos.receivers import Receiver
from tests.chaos.run import _drain, settles_within_s

pytestmark = pytest.mark.integration


async def test_the_drain_waits_for_a_claim_in_flight_and_ends_once_it_settled(
    mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    env = Environment.from_environ(f"drain{run_id}")
    await ensure_topics(env.settings)  # empty topics: no consumer lag
    desk = Receiver("desk", "http://127.0.0.1:1/desk", 0.0, random.Random(0))
    # the receivers heard nothing for a few seconds, far less than a lease
    desk.last_delivery_at = time.monotonic() - 5
    assert settles_within_s() > 30
    await mongo_db["alerts"].insert_one(
        {
            "alert_id": "SO-1:support",
            "status": "open",
            "deliveries": [
                {"channel": "desk", "status": "sending", "claimed_at": datetime.now(UTC)}
            ],
        }
    )
    try:
        assert await _drain(env, mongo_db, [desk], within=3) is False

        await mongo_db["alerts"].update_one(
            {"alert_id": "SO-1:support"}, {"$set": {"deliveries.0.status": "delivered"}}
        )
        assert await _drain(env, mongo_db, [desk], within=30) is True
    finally:
        await delete_topics(env.settings, [env.settings.topics])

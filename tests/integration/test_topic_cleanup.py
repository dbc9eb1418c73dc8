"""A run's topics are deleted after it (``shared.kafka.delete_topics``: the test session's end,
``python -m bench``): a local stack kept through a day of runs held 11,792 partitions, and its
Kafka took minutes to restart. On the real local Kafka."""

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka import connection_options, delete_topics, ensure_topics
from shared.settings import Settings, Topics
from tests.conftest import eventually

pytestmark = pytest.mark.integration


async def _existing(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_runs_topics_are_deleted_and_no_others() -> None:
    runs = [Topics.prefixed(f"cleanup-{uuid.uuid4().hex[:8]}") for _ in range(3)]
    for topics in runs:
        await ensure_topics(Settings(topics=topics))
    kept, *deleted = runs
    never_made = Topics.prefixed(f"cleanup-{uuid.uuid4().hex[:8]}")

    count = await delete_topics(Settings(), [*deleted, never_made])

    assert count == 8

    async def deleted_gone() -> bool:  # the broker's metadata follows the controller's deletion
        return not {name for t in deleted for name in t.names} & await _existing(Settings())

    await eventually(deleted_gone, within=20)
    assert set(kept.names) <= await _existing(Settings())
    await delete_topics(Settings(), [kept])

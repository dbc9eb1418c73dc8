"""An aiokafka client whose metadata task died is repaired (shared.kafka_health): seen in the
chaos run as a notifier that stopped for good after a broker restart, its coordinator waiting on
a metadata refresh that nothing would ever resolve. On the real local Kafka."""

import asyncio
from typing import Any

import pytest

from shared.kafka import ensure_topics, make_broker, make_producer
from shared.kafka_health import revive_metadata_task, tracked_clients
from shared.settings import Settings
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def _kill_metadata_task(client: Any) -> RuntimeError:
    """End the client's metadata task with an error, in the middle of a refresh."""
    error = RuntimeError("transport closed under the metadata refresh")
    update = client._metadata_update

    async def fails_once(*args: Any, **kwargs: Any) -> bool:
        client._metadata_update = update
        raise error

    client._metadata_update = fails_once
    client.force_metadata_update()
    return error


async def test_a_producer_whose_metadata_task_died_sends_again_once_it_is_revived(
    settings: Settings,
) -> None:
    await ensure_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        client = producer.client
        error = _kill_metadata_task(client)
        await eventually(lambda: _done(client._sync_task), within=10)

        # a topic this producer has not sent to yet needs a metadata refresh: it waits for ever
        send = asyncio.create_task(producer.send_and_wait(settings.topics.orders, b"{}"))
        await asyncio.sleep(2)
        assert not send.done(), "the send should wait on the dead task's refresh"

        assert revive_metadata_task(client) is error
        assert (await asyncio.wait_for(send, 20)).offset >= 0
        assert revive_metadata_task(client) is None  # a live task is left alone
    finally:
        await producer.stop()


async def test_every_client_the_services_make_is_checked(settings: Settings) -> None:
    """``make_producer`` (like ``make_broker``) registers its clients, FastStream's included;
    a closed client's cancelled task is no repair."""
    producer = make_producer(settings)
    broker = make_broker(settings)
    await producer.start()
    before = set(map(id, tracked_clients()))
    await broker.start()  # FastStream's producer: a client made inside FastStream
    try:
        assert producer.client in tracked_clients()
        assert set(map(id, tracked_clients())) - before
        _kill_metadata_task(producer.client)
        await eventually(lambda: _done(producer.client._sync_task), within=10)
        assert revive_metadata_task(producer.client) is not None
        assert not producer.client._sync_task.done()
        # the refresh the revived task starts at once is over before the producer stops (a
        # client stopped mid-connect leaves its socket to the collector)
        assert await asyncio.wait_for(producer.client.force_metadata_update(), 20)
    finally:
        await broker.stop()
        await producer.stop()
    assert revive_metadata_task(producer.client) is None


async def _done(task: asyncio.Task[Any]) -> bool:
    return task.done()


async def test_a_metadata_task_cancelled_by_anything_but_close_is_replaced_at_the_next_check(
    settings: Settings,
) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        client = producer.client
        await client.force_metadata_update()  # the task idle, not mid-connect, when cancelled
        client._sync_task.cancel()
        refresh = client.force_metadata_update()
        await eventually(lambda: _done(client._sync_task), within=10)
        assert revive_metadata_task(client) is None  # as if close() were under way
        error = revive_metadata_task(client)  # still there: not close()
        assert isinstance(error, asyncio.CancelledError)
        assert await asyncio.wait_for(refresh, 20)
    finally:
        await producer.stop()

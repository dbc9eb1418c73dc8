"""An idempotent producer keeps its partitions' sequences through a partition long without a
leader, and says so on ``/healthz`` when one breaks anyway (``shared.kafka_health``): the chaos
run's ingest answered 503 until it was restarted after a 110 s Kafka restart (aiokafka issue
#1017). On the real local Kafka; the producer is made to see the partition without a leader, as
while a restarted broker still loads its logs."""

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import LeaderNotAvailableError, OutOfOrderSequenceNumber
from aiokafka.structs import RecordMetadata, TopicPartition
from fastapi import FastAPI

from shared.kafka import SAFE_PRODUCER, connection_options, ensure_topics
from shared.kafka_health import broken_producer, track_kafka_clients
from shared.probes import ReadinessCheck, probes_router
from shared.settings import Settings

pytestmark = pytest.mark.integration

REQUEST_TIMEOUT_S = 1.0  # how long aiokafka lets a batch wait for a leader (40 s by default)


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(settings)
    track_kafka_clients()
    producer = AIOKafkaProducer(
        **connection_options(settings),
        **SAFE_PRODUCER,
        request_timeout_ms=int(REQUEST_TIMEOUT_S * 1000),
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
    assert broken_producer() is None  # a stopped producer is not counted


def _without_leader(producer: AIOKafkaProducer, tp: TopicPartition) -> Callable[[], None]:
    """Make the producer see ``tp`` without a leader; answers the function that gives it back."""
    cluster = producer.client.cluster
    leader_for = cluster.leader_for_partition
    cluster.leader_for_partition = lambda asked: -1 if asked == tp else leader_for(asked)
    return lambda: setattr(cluster, "leader_for_partition", leader_for)


async def _send_batch(
    producer: AIOKafkaProducer, tp: TopicPartition, value: bytes
) -> asyncio.Future[RecordMetadata]:
    """One record as a batch of its own, as ``shared.kafka.send_batched`` sends them."""
    batch = producer.create_batch()
    batch.append(key=None, value=value, timestamp=None)
    return await producer.send_batch(batch, tp.topic, partition=tp.partition)


async def _waiting_for_a_leader(
    producer: AIOKafkaProducer, tp: TopicPartition, expire_after: float | None = None
) -> tuple[asyncio.Future[RecordMetadata], Callable[[], None]]:
    """A batch sent once the broker knows the producer, to ``tp`` without a leader; and the
    function that gives the leader back. ``expire_after``: aiokafka's own expiry put back for
    this batch (not for the first send: a new topic's leader may take longer to come). The
    next batch is sent only once this one is done: until then it would wait for a slot behind
    it (``add_batch``) no longer than the request timeout, however busy the machine."""
    await producer.send_and_wait(tp.topic, b"{}", partition=tp.partition)
    if expire_after is not None:
        producer._message_accumulator._batch_ttl = expire_after
    give_back = _without_leader(producer, tp)
    return await _send_batch(producer, tp, b'{"n": 1}'), give_back


async def test_a_batch_that_waits_long_for_a_leader_is_delivered_and_the_next_after_it(
    producer: AIOKafkaProducer, settings: Settings
) -> None:
    """aiokafka failed the waiting batch after its request timeout, once it had taken its
    sequence numbers; the broker then refused every later batch of the partition."""
    tp = TopicPartition(settings.topics.orders, 0)
    waiting, give_back = await _waiting_for_a_leader(producer, tp)
    await asyncio.sleep(2.5 * REQUEST_TIMEOUT_S)  # past the request timeout, and still waiting
    give_back()

    first = await asyncio.wait_for(waiting, 20)
    second = await asyncio.wait_for(await _send_batch(producer, tp, b'{"n": 2}'), 20)

    assert second.offset == first.offset + 1
    assert broken_producer() is None


async def test_a_partition_whose_sequence_broke_fails_the_liveness_probe(
    producer: AIOKafkaProducer, settings: Settings
) -> None:
    """aiokafka's own expiry (the request timeout) put back on this producer: the failure the
    chaos run met, and what ``/healthz`` must then answer."""
    app = FastAPI()
    app.include_router(probes_router(lambda request: ReadinessCheck({}, (), ())))
    probe = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")
    async with probe:
        assert (await probe.get("/healthz")).status_code == 200
        tp = TopicPartition(settings.topics.orders, 0)
        waiting, give_back = await _waiting_for_a_leader(producer, tp, REQUEST_TIMEOUT_S)

        with pytest.raises(LeaderNotAvailableError):
            await asyncio.wait_for(waiting, 20)
        give_back()
        with pytest.raises(OutOfOrderSequenceNumber):
            await asyncio.wait_for(await _send_batch(producer, tp, b'{"n": 2}'), 20)
        answer = await probe.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "failing",
        "reason": "a Kafka producer is broken: OutOfOrderSequenceNumber; restart the process",
    }


async def test_a_producer_that_stops_waits_for_a_leader_no_longer_than_aiokafka_let_it(
    producer: AIOKafkaProducer, settings: Settings
) -> None:
    """A shutdown during the outage: what was not delivered fails, as a send that was not
    acknowledged (sent again, or redelivered), instead of holding the process until killed."""
    waiting, _ = await _waiting_for_a_leader(producer, TopicPartition(settings.topics.orders, 0))

    await asyncio.wait_for(producer.stop(), 10 * REQUEST_TIMEOUT_S)

    with pytest.raises(LeaderNotAvailableError):
        await waiting

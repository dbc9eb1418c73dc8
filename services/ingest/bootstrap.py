"""The composition root of ingest: builds its clients and use cases once, for the HTTP app, the
import CLI and the tests alike. Nothing else in ingest opens a connection."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from services.ingest.batch import BatchReader
from services.ingest.idempotency import OrderIdempotency
from services.ingest.intake import Intake
from services.ingest.publishing import OrderEventPublisher
from services.ingest.settings import IngestSettings
from shared.auth import ensure_safe_to_start
from shared.kafka import ensure_topics, make_producer
from shared.kafka_health import keep_kafka_clients_working
from shared.ratelimit import RateLimiter
from shared.redis import AnyRedis, make_redis
from shared.tasks import cancel_and_wait


@dataclass(frozen=True)
class Ingest:
    """Everything ingest's entrypoints use, built from the settings."""

    settings: IngestSettings
    redis: AnyRedis
    producer: AIOKafkaProducer
    intake: Intake
    batches: BatchReader
    rate_limiter: RateLimiter


@asynccontextmanager
async def bootstrap(settings: IngestSettings) -> AsyncIterator[Ingest]:
    """Ingest's clients and use cases, open for the duration of the block."""
    ensure_safe_to_start(settings)
    redis = make_redis(settings)
    producer = make_producer(settings)
    watchdog = None
    try:
        await ensure_topics(settings)
        await producer.start()
        watchdog = asyncio.create_task(keep_kafka_clients_working(), name="kafka-watchdog")
        publisher = OrderEventPublisher(
            producer, settings.topics.orders, settings.ingest_publish_timeout_s
        )
        idempotency = OrderIdempotency(redis, settings.ingest_idempotency_retention_s)
        yield Ingest(
            settings=settings,
            redis=redis,
            producer=producer,
            intake=Intake(publisher, idempotency),
            batches=BatchReader(settings.ingest_max_batch),
            rate_limiter=RateLimiter(redis, settings.ingest_rate_per_minute, namespace="ingest"),
        )
    finally:
        if watchdog is not None:
            await cancel_and_wait([watchdog])
        await producer.stop()
        await redis.aclose()

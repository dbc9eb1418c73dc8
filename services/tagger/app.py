"""The tagger's composition root: builds Kafka, MongoDB and Redis clients and wires the handler."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import stamina
import structlog
from aiokafka import TopicPartition
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import make_asgi_app
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.console.mount import mount_console
from services.tagger import metrics
from services.tagger.api import router as api_router
from services.tagger.dead_letters import DeadLetter, decode_records, unknown_order_letters
from services.tagger.editing import TagEditing
from services.tagger.figures import CustomerFigures
from services.tagger.jobs import Jobs
from services.tagger.publishing import TaggerOutput
from services.tagger.rules.book import RuleBook
from services.tagger.settings import TaggerSettings
from services.tagger.store import OrderStore
from services.tagger.tagging import TaggingService
from shared.http import install_error_handlers
from shared.kafka import ensure_topics, make_broker, make_producer
from shared.redis import make_redis

log = structlog.get_logger("tagger")

TRANSIENT_ERRORS = (
    AutoReconnect,
    ConnectionFailure,
    RedisConnectionError,
    RedisTimeoutError,
    TimeoutError,
    ConnectionError,
)


def build_broker(
    settings: TaggerSettings, tagging: TaggingService, output: TaggerOutput
) -> KafkaBroker:
    broker = make_broker(settings)

    # A batch is the unit of work and of commit: offsets move only after every effect of the
    # batch is stored and published; if anything raises, NACK_ON_ERROR seeks back to the start
    # of the batch and it is redelivered (effects are idempotent).
    @broker.subscriber(
        settings.topics.orders,
        group_id=settings.tagger_group_id,
        batch=True,
        max_records=settings.tagger_batch_max_records,
        batch_timeout_ms=settings.tagger_batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_order_events(message: KafkaMessage) -> None:
        with metrics.BATCH_SECONDS.time():
            decoded, dead = decode_records(message.raw_message)
            async for attempt in stamina.retry_context(on=TRANSIENT_ERRORS, attempts=5, timeout=60):
                with attempt:
                    outcome = await tagging.tag([event for event, _ in decoded])
            dead += unknown_order_letters(decoded, outcome.unknown_orders)
            await output.publish(outcome.tagged, dead)
        _observe(message, len(decoded), dead)

    return broker


def _observe(message: Any, decoded: int, dead: list[DeadLetter]) -> None:
    metrics.BATCH_SIZE.observe(decoded + len(dead))
    metrics.DEAD_LETTERS.inc(len(dead))
    for letter in dead:
        log.warning("dead_letter", error=letter.error, **letter.headers())
    last = message.raw_message[-1]
    with contextlib.suppress(Exception):  # lag is best effort: never fail a batch over it
        highwater = message.consumer.highwater(TopicPartition(last.topic, last.partition))
        metrics.CONSUMER_LAG.labels(str(last.partition)).set(max(highwater - last.offset - 1, 0))


async def watch_rules(book: RuleBook, every_s: float = 2.0) -> None:
    """Pick up edits of the rule file; a bad edit is refused and the last good rules stay."""
    while True:
        await asyncio.sleep(every_s)
        outcome = await asyncio.to_thread(book.reload_if_changed)
        if outcome is not None:
            metrics.RULE_RELOADS.labels("loaded" if outcome else "refused").inc()


def create_app(settings: TaggerSettings | None = None) -> FastAPI:
    settings = settings or TaggerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        book = RuleBook(settings.tagger_rules_file)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongo_url, tz_aware=True
        )
        redis = make_redis(settings)
        store = OrderStore(mongo[settings.mongo_database])
        await store.ensure_indexes()
        await store.seed_catalog(book.current.tags)
        await ensure_topics(settings)
        tagging = TaggingService(
            book,
            CustomerFigures(redis),
            store,
            max_tags=settings.tagger_max_tags_per_order,
            lanes=settings.tagger_lanes,
        )
        producer = make_producer(settings)
        await producer.start()
        output = TaggerOutput(producer, settings.topics.tagged, settings.topics.dead_letter)
        broker = build_broker(settings, tagging, output)

        editing = TagEditing(
            store,
            book,
            output.publish,
            max_tags=settings.tagger_max_tags_per_order,
            allow_free_tags=settings.tagger_allow_free_tags,
        )
        jobs = Jobs(mongo[settings.mongo_database], editing)
        await jobs.ensure_indexes()
        app.state.store, app.state.rules, app.state.redis = store, book, redis
        app.state.editing, app.state.jobs = editing, jobs
        await broker.start()
        await jobs.resume_all()
        watcher = asyncio.create_task(watch_rules(book))
        try:
            yield
        finally:
            watcher.cancel()
            await jobs.stop()
            await broker.stop()
            await producer.stop()
            await redis.aclose()
            await mongo.close()

    app = FastAPI(title="ordertag tagger and Tag API", version="0.1.0", lifespan=lifespan)
    app.state.api_keys = settings.api_keys
    app.state.rate_per_minute = settings.api_rate_per_minute
    app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)
    app.include_router(api_router)
    mount_console(app)  # the staff console: pages, sessions, /console/api

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""The tagger's composition root: builds Kafka, MongoDB and Redis clients and wires the handler."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pymongo import AsyncMongoClient

from services.tagger.dead_letters import decode_records
from services.tagger.settings import TaggerSettings
from services.tagger.store import OrderStore
from shared.kafka import make_broker

log = structlog.get_logger("tagger")


def build_broker(settings: TaggerSettings, store: OrderStore) -> KafkaBroker:
    broker = make_broker(settings)
    dead_letter_topic = settings.topics.dead_letter

    # Batches are the unit of work and of commit: offsets move only after every effect of the
    # batch is stored (NACK_ON_ERROR seeks back to the batch start if anything raises).
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
        events, dead = decode_records(message.raw_message)
        for letter in dead:
            await broker.publish(
                letter.record.value,
                topic=dead_letter_topic,
                key=letter.record.key,
                headers=letter.headers(),
            )
            log.warning("dead_letter", error=letter.error, **letter.headers())
        await store.save_orders(events)

    return broker


def create_app(settings: TaggerSettings | None = None) -> FastAPI:
    settings = settings or TaggerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            settings.mongo_url, tz_aware=True
        )
        store = OrderStore(mongo[settings.mongo_database])
        await store.ensure_indexes()
        broker = build_broker(settings, store)
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await mongo.close()

    app = FastAPI(title="ordertag tagger", version="0.1.0", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""The notifier's composition root: a consumer of tagged-order events and its HTTP page."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from services.notifier.settings import NotifierSettings
from shared.events import OrderTagged
from shared.kafka import make_broker

log = structlog.get_logger("notifier")


def build_broker(settings: NotifierSettings) -> KafkaBroker:
    broker = make_broker(settings)

    @broker.subscriber(
        settings.topics.tagged,
        group_id=settings.notifier_group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,
    )
    async def on_order_tagged(event: OrderTagged) -> None:
        log.info("order_tagged", order_no=event.order_no, tags=[t.name for t in event.tags])

    return broker


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = build_broker(settings)
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()

    app = FastAPI(title="ordertag notifier", version="0.1.0", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

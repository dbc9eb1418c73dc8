"""The notifier's composition root: a consumer of tagged-order events, the channel workers and
the live support page, built in the app's lifespan."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import make_asgi_app
from pydantic import ValidationError

from services.notifier.alerting import Alerting
from services.notifier.channels import ChannelSender
from services.notifier.delivery import ChannelWorker, Dispatcher
from services.notifier.live import LiveFeed
from services.notifier.page import router as page_router
from services.notifier.routing import load_routing
from services.notifier.settings import DEFAULT_SESSION_SECRET, NotifierSettings
from services.notifier.store import AlertStore
from shared.events import Alert, OrderTagged
from shared.http import install_error_handlers
from shared.kafka import asyncapi_document, ensure_topics, make_broker
from shared.mongo import make_mongo_client
from shared.redis import make_redis

log = structlog.get_logger("notifier")


def subscribe_tagged_orders(
    broker: KafkaBroker, settings: NotifierSettings, alerting: Alerting
) -> None:
    @broker.subscriber(
        settings.topics.tagged,
        group_id=settings.notifier_group_id,
        batch=True,
        max_records=500,
        batch_timeout_ms=50,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="tagged orders",
    )
    async def on_orders_tagged(message: KafkaMessage) -> None:
        events = []
        for record in message.raw_message:
            try:
                events.append(OrderTagged.model_validate_json(record.value or b""))
            except ValidationError as error:  # not ours to fix: skip, say so, go on
                log.error(
                    "undecodable_tagged_event",
                    offset=record.offset,
                    partition=record.partition,
                    error=str(error)[:300],
                )
        await alerting.handle(events)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()
    routing = load_routing(settings.notifier_routing_file)
    if settings.notifier_session_secret == DEFAULT_SESSION_SECRET:
        log.warning(
            "default_session_secret",
            hint="set ORDERTAG_NOTIFIER_SESSION_SECRET: anyone can forge page sessions",
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = make_mongo_client(settings)
        redis = make_redis(settings)
        http = httpx.AsyncClient(timeout=10)
        store = AlertStore(mongo[settings.mongo_database])
        await store.ensure_indexes()
        await ensure_topics(settings)
        live = LiveFeed(redis)
        sender = ChannelSender(http)
        workers = {
            channel.id: ChannelWorker(
                channel,
                sender,
                store,
                live.publish,
                attempts=settings.notifier_retry_attempts,
                base_delay_s=settings.notifier_retry_base_s,
            )
            for channel in routing.channels
        }
        dispatcher = Dispatcher(workers)
        broker = make_broker(settings)
        alerts_topic = broker.publisher(settings.topics.alerts, title="alerts", schema=Alert)

        async def publish_alerts(alerts: list[Alert]) -> None:
            sends = [
                await alerts_topic.publish(a, key=a.customer_id.encode(), no_confirm=True)
                for a in alerts
            ]
            await asyncio.gather(*sends)

        alerting = Alerting(
            routing,
            store,
            dispatcher,
            live,
            redis,
            settings.notifier_order_url_base,
            publish_alerts,
        )
        subscribe_tagged_orders(broker, settings, alerting)
        app.state.alert_store, app.state.live, app.state.alerting = store, live, alerting
        app.state.broker = broker
        dispatcher.start()
        await alerting.resume_pending()
        await broker.start()
        escalations = asyncio.create_task(
            alerting.watch_escalations(settings.notifier_escalation_check_s)
        )
        attempt_log = asyncio.create_task(store.flush_attempts_every(0.2))
        try:
            yield
        finally:
            escalations.cancel()
            attempt_log.cancel()
            await broker.stop()
            await dispatcher.stop()
            await store.flush_attempts()
            await http.aclose()
            await redis.aclose()
            await mongo.close()

    app = FastAPI(title="ordertag notifier", version="0.1.0", lifespan=lifespan)
    app.state.api_keys = settings.api_keys
    app.state.page_users = settings.notifier_page_users
    app.state.session_secret = settings.notifier_session_secret
    app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)
    app.include_router(page_router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Any:
        return asyncapi_document(app.state.broker, "ordertag notifier")

    return app

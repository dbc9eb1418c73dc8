"""The ingest HTTP API: its composition root builds the Kafka broker in the app's lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.ingest.publishing import BrokerUnavailable, OrderEventPublisher
from services.ingest.settings import IngestSettings
from shared.events import OrderCreated
from shared.kafka import make_broker
from shared.models import Order

log = structlog.get_logger("ingest")


class Accepted(BaseModel):
    order_no: str
    event_id: str
    status: str = "accepted"


def get_publisher(request: Request) -> OrderEventPublisher:
    publisher: OrderEventPublisher = request.app.state.publisher
    return publisher


Publisher = Annotated[OrderEventPublisher, Depends(get_publisher)]


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = make_broker(settings)
        await broker.start()
        app.state.publisher = OrderEventPublisher(
            broker, settings.topics.orders, settings.ingest_publish_timeout_s
        )
        try:
            yield
        finally:
            await broker.stop()

    app = FastAPI(title="ordertag ingest", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(BrokerUnavailable)
    async def broker_unavailable(_: Request, error: BrokerUnavailable) -> JSONResponse:
        log.warning("broker_unavailable", error=str(error))
        return JSONResponse(
            {"detail": "Kafka is unavailable; the order was not accepted, retry later"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.post("/orders", status_code=status.HTTP_202_ACCEPTED)
    async def post_order(order: Order, publisher: Publisher) -> Accepted:
        event = OrderCreated(order=order)
        await publisher.publish(event)
        log.info("order_accepted", order_no=order.order_no, event_id=str(event.event_id))
        return Accepted(order_no=order.order_no, event_id=str(event.event_id))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

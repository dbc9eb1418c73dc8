"""The ingest HTTP API. Its composition root builds Kafka and Redis clients in the lifespan."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import BaseModel, Field, ValidationError

from services.ingest.idempotency import OrderIdempotency
from services.ingest.intake import Intake, ItemResult, Outcome, UnknownOrder, parse_batch
from services.ingest.publishing import BrokerUnavailable, OrderEventPublisher
from services.ingest.settings import IngestSettings
from shared.auth import Scope, require_scope
from shared.events import OrderEvent
from shared.http import BodySizeLimit, install_error_handlers
from shared.kafka import asyncapi_document, ensure_topics, make_broker, make_producer
from shared.models import Identifier, Order, OrderStatus, StrictModel
from shared.redis import make_redis

log = structlog.get_logger("ingest")
RETRY_LATER = {"Retry-After": "5"}


class Accepted(BaseModel):
    order_no: str
    event_id: str
    status: str


class BatchOut(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    items: list[dict[str, Any]]


class StatusChangeIn(StrictModel):
    status: OrderStatus
    customer_id: Identifier | None = Field(
        default=None, description="needed only when ingest no longer remembers the order"
    )


def batch_body_schema(max_batch: int) -> dict[str, Any]:
    """The documented body of POST /orders/batch (read by the handler itself)."""
    orders = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Order"},
        "minItems": 1,
        "maxItems": max_batch,
        "description": "orders; each invalid one is reported on its own, the rest go on",
    }
    schema = {"type": "object", "properties": {"orders": orders}, "required": ["orders"]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]
may_ingest = [Depends(require_scope(Scope.INGEST))]


def single_answer(result: ItemResult) -> JSONResponse:
    """One order's outcome as an HTTP answer."""
    body: dict[str, Any] = {"order_no": result.order_no, "event_id": result.event_id}
    match result.outcome:
        case Outcome.ACCEPTED:
            return JSONResponse({**body, "status": "accepted"}, status.HTTP_202_ACCEPTED)
        case Outcome.DUPLICATE:
            return JSONResponse({**body, "status": "already accepted"}, status.HTTP_200_OK)
        case Outcome.CONFLICT:
            detail = (
                f"order {result.order_no} was already accepted with different content; "
                f"send changes with PUT /orders/{result.order_no}"
            )
            return JSONResponse({"detail": detail}, status.HTTP_409_CONFLICT)
        case Outcome.IN_FLIGHT:
            detail = f"order {result.order_no} is being accepted by another request; retry"
            return JSONResponse(
                {"detail": detail}, status.HTTP_409_CONFLICT, headers={"Retry-After": "1"}
            )
        case _:
            raise BrokerUnavailable(f"order {result.order_no} not acknowledged by Kafka")


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    # Declared for the AsyncAPI document; events go out through the bare producer (hot path).
    asyncapi_broker = make_broker(settings)
    asyncapi_broker.publisher(
        settings.topics.orders,
        title="order events",
        description="Order created / updated / status changed, keyed by customer id",
        schema=OrderEvent,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = make_redis(settings)
        producer = make_producer(settings)
        await ensure_topics(settings)
        await producer.start()
        publisher = OrderEventPublisher(
            producer, settings.topics.orders, settings.ingest_publish_timeout_s
        )
        idempotency = OrderIdempotency(redis, settings.ingest_idempotency_retention_s)
        app.state.intake = Intake(publisher, idempotency)
        app.state.producer = producer
        try:
            yield
        finally:
            await producer.stop()
            await redis.aclose()

    app = FastAPI(title="ordertag ingest", version="0.1.0", lifespan=lifespan)
    app.state.api_keys = settings.api_keys
    app.add_middleware(BodySizeLimit, max_bytes=settings.ingest_max_body_bytes)
    app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)

    @app.exception_handler(BrokerUnavailable)
    async def broker_unavailable(_: Request, error: BrokerUnavailable) -> JSONResponse:
        log.warning("broker_unavailable", error=str(error))
        return JSONResponse(
            {"detail": "Kafka is unavailable; the order was not accepted, retry later"},
            status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=RETRY_LATER,
        )

    @app.exception_handler(UnknownOrder)
    async def unknown_order(_: Request, error: UnknownOrder) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status.HTTP_404_NOT_FOUND)

    @app.post(
        "/orders",
        status_code=202,
        dependencies=may_ingest,
        response_model=Accepted,
        responses={200: {"model": Accepted}, 409: {}, 503: {}},
    )
    async def post_order(order: Order, intake: IntakeDep) -> JSONResponse:
        [result] = await intake.submit([(0, order)])
        log.info("order_received", order_no=order.order_no, outcome=result.outcome.value)
        return single_answer(result)

    @app.post(
        "/orders/batch",
        dependencies=may_ingest,
        response_model=BatchOut,
        responses={503: {"model": BatchOut}},
        openapi_extra=batch_body_schema(settings.ingest_max_batch),
    )
    async def post_batch(request: Request, intake: IntakeDep) -> JSONResponse:
        # The body is parsed here, not by FastAPI: one pass over the raw JSON for the usual
        # all-valid batch (see parse_batch).
        try:
            valid, invalid = parse_batch(await request.body())
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        if len(valid) + len(invalid) > settings.ingest_max_batch:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"orders: at most {settings.ingest_max_batch} orders per batch, "
                f"got {len(valid) + len(invalid)}; split the batch",
            )
        results = sorted(invalid + await intake.submit(valid), key=lambda r: r.index)
        counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
        body = BatchOut(
            accepted=counts[Outcome.ACCEPTED],
            duplicates=counts[Outcome.DUPLICATE],
            rejected=len(results) - counts[Outcome.ACCEPTED] - counts[Outcome.DUPLICATE],
            items=[r.as_json() for r in results],
        )
        unavailable = counts[Outcome.UNAVAILABLE] > 0
        return JSONResponse(
            body.model_dump(),
            503 if unavailable else 200,
            headers=RETRY_LATER if unavailable else None,
        )

    @app.put("/orders/{order_no}", dependencies=may_ingest, response_model=Accepted)
    async def put_order(order_no: str, order: Order, intake: IntakeDep) -> JSONResponse:
        if order.order_no != order_no:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"order_no: the body says {order.order_no!r} but the path says {order_no!r}",
            )
        return single_answer(await intake.update(order))

    @app.post(
        "/orders/{order_no}/status",
        status_code=202,
        dependencies=may_ingest,
        response_model=Accepted,
    )
    async def post_status(order_no: str, change: StatusChangeIn, intake: IntakeDep) -> Accepted:
        event = await intake.change_status(order_no, change.status, change.customer_id)
        return Accepted(order_no=order_no, event_id=str(event.event_id), status="accepted")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        producer: AIOKafkaProducer = request.app.state.producer
        try:
            async with asyncio.timeout(2.0):
                await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError, OSError):
            return JSONResponse({"status": "kafka unreachable"}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Any:
        return asyncapi_document(asyncapi_broker, "ordertag ingest")

    return app

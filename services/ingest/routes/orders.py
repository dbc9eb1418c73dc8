"""``/orders``: new orders (one or a batch), changed orders, status changes."""

from collections import Counter
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import to_json

from services.ingest.batch import BatchReader
from services.ingest.intake import Intake, ItemResult, Outcome
from services.ingest.routes.deps import BatchesDep, IntakeDep, may_ingest
from shared.errors import Conflict, DependencyUnavailable, InvalidInput
from shared.gc_tuning import cycles_collected_after
from shared.http import FieldProblem, error_responses, json_body_only
from shared.models import IDENTIFIER_PATTERN, Identifier, Order, OrderStatus, StrictModel

log = structlog.get_logger("ingest")
RETRY_AFTER_S = 5
OrderNo = Annotated[
    str,
    Path(pattern=IDENTIFIER_PATTERN, description="the order number (letters, digits, _ . : -)"),
]
router = APIRouter(prefix="/orders", tags=["orders"], dependencies=[may_ingest])
_BODY_ERRORS = (400, 401, 403, 413, 415, 422, 429)


class Accepted(BaseModel):
    order_no: str
    event_id: str
    status: str = Field(description='"accepted", or "already accepted" for a resend')


class BatchItem(BaseModel):
    index: int
    order_no: str | None
    outcome: Outcome
    event_id: str | None = None
    errors: list[FieldProblem] | None = None
    detail: str | None = None


class BatchOut(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    items: list[BatchItem]


class StatusChangeIn(StrictModel):
    status: OrderStatus
    customer_id: Identifier | None = Field(
        default=None, description="needed only when ingest no longer remembers the order"
    )


def batch_body_doc(max_batch: int) -> dict[str, Any]:
    """The documented body of POST /orders/batch (read by the route itself, see BatchReader)."""
    orders = {
        "type": "array",
        # Each item is meant to be an Order; one that is not is reported in the answer's items
        # with its errors while the rest go on, so the body itself accepts any item.
        "items": {"anyOf": [{"$ref": "#/components/schemas/Order"}, {}]},
        "minItems": 1,
        "maxItems": max_batch,
        "description": "orders; each invalid one is reported on its own, the rest go on",
    }
    schema = {
        "type": "object",
        "properties": {"orders": orders},
        "required": ["orders"],
        "additionalProperties": False,
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _single_answer(result: ItemResult) -> JSONResponse:
    """One order's outcome as an HTTP answer."""
    body = {"order_no": result.order_no, "event_id": result.event_id}
    match result.outcome:
        case Outcome.ACCEPTED:
            return JSONResponse({**body, "status": "accepted"}, status.HTTP_202_ACCEPTED)
        case Outcome.DUPLICATE:
            return JSONResponse({**body, "status": "already accepted"}, status.HTTP_200_OK)
        case Outcome.CONFLICT:
            raise Conflict(
                f"order {result.order_no} was already accepted with different content; "
                f"send changes with PUT /orders/{result.order_no}"
            )
        case Outcome.IN_FLIGHT:
            raise Conflict(
                f"order {result.order_no} is being accepted by another request; retry",
                retry_after_s=1,
            )
        case _:
            raise DependencyUnavailable("ingest", result.detail or "not accepted; retry later")


json_only = [Depends(json_body_only)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    dependencies=json_only,
    responses={
        200: {"model": Accepted, "description": "the same order was accepted before"},
        **error_responses(*_BODY_ERRORS, 409, 503),
    },
)
async def post_order(order: Order, intake: IntakeDep) -> JSONResponse:
    [result] = await intake.submit([(0, order)])
    log.info("order_received", order_no=order.order_no, outcome=result.outcome.value)
    return _single_answer(result)


@router.put(
    "/{order_no}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    dependencies=json_only,
    responses={
        200: {"model": Accepted, "description": "identical to the content accepted before"},
        **error_responses(*_BODY_ERRORS, 409, 503),
    },
)
async def put_order(order_no: OrderNo, order: Order, intake: IntakeDep) -> JSONResponse:
    if order.order_no != order_no:
        raise InvalidInput(
            "order_no", f"the body says {order.order_no!r} but the path says {order_no!r}"
        )
    return _single_answer(await intake.update(order))


@router.post(
    "/{order_no}/status",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    dependencies=json_only,
    responses=error_responses(*_BODY_ERRORS, 404, 503),
)
async def post_status(
    order_no: OrderNo, change: Annotated[StatusChangeIn, Body()], intake: IntakeDep
) -> Accepted:
    event = await intake.change_status(order_no, change.status, change.customer_id)
    return Accepted(order_no=order_no, event_id=str(event.event_id), status="accepted")


def batch_router(max_batch: int) -> APIRouter:
    """POST /orders/batch reads its own body (see BatchReader); the schema it documents carries
    the cap, so the route is built per app."""
    batches = APIRouter(prefix="/orders", tags=["orders"], dependencies=[may_ingest])
    batches.add_api_route(
        "/batch",
        post_batch,
        methods=["POST"],
        response_model=BatchOut,
        dependencies=json_only,
        responses={
            503: {
                "model": BatchOut,
                "description": "some orders were not taken (outcome unavailable): resend them",
                "headers": error_responses(503)[503]["headers"],
            },
            **error_responses(*_BODY_ERRORS),
        },
        openapi_extra=batch_body_doc(max_batch),
    )
    return batches


async def post_batch(request: Request, intake: IntakeDep, batches: BatchesDep) -> Response:
    body = await request.body()  # a slow upload holds no collection off
    with cycles_collected_after():  # a batch's orders would be traversed by every collection
        answer = await answer_batch(body, intake, batches)
    # The batch's objects died with answer_batch's frame, before collection comes back: only
    # what is alive is traversed, and a batch leaves nothing behind but the answer's bytes.
    return answer


async def answer_batch(body: bytes, intake: Intake, batches: BatchReader) -> Response:
    try:
        valid, invalid = await batches.read(body)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None
    results = sorted(invalid + await intake.submit(valid), key=lambda r: r.index)
    counts = Counter(r.outcome for r in results)
    unavailable = counts[Outcome.UNAVAILABLE] > 0
    answer = {
        "accepted": counts[Outcome.ACCEPTED],
        "duplicates": counts[Outcome.DUPLICATE],
        "rejected": len(results) - counts[Outcome.ACCEPTED] - counts[Outcome.DUPLICATE],
        "items": [r.as_json() for r in results],
    }
    return Response(
        to_json(answer),  # what JSONResponse renders, from pydantic-core's encoder
        status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_200_OK,
        headers={"Retry-After": str(RETRY_AFTER_S)} if unavailable else None,
        media_type="application/json",
    )

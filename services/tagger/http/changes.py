"""Tag changes by hand: on one order, on a list of orders, or on every order a filter matches
(a dry run first, then a job)."""

from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from services.tagger.commands import DryRun
from services.tagger.errors import Invalid, NotFound
from services.tagger.governance import ChangeForbidden, role_of
from services.tagger.http.deps import Commands, Editor
from services.tagger.http.errors import responses
from services.tagger.http.models import (
    BulkOutcome,
    BulkTagChangeIn,
    ChangeOutcome,
    DryRunOut,
    FilterJobOut,
    FilterTagChangeIn,
    TagChangeIn,
)
from services.tagger.outcomes import EditOutcome

router = APIRouter(tags=["tag changes"], responses=responses(401, 403, 413, 422, 429, 503))


@router.post("/orders/{order_no}/tags", response_model=ChangeOutcome, responses=responses(404))
async def change_order_tags(
    order_no: str, body: TagChangeIn, key: Editor, commands: Commands
) -> Any:
    change = body.as_change(key.name)
    result = (await commands.change([order_no], change, role=role_of(key)))[order_no]
    if result.outcome is EditOutcome.NOT_FOUND:
        raise NotFound(f"no order {order_no!r}")
    if result.outcome is EditOutcome.FORBIDDEN:
        raise ChangeForbidden("remove", result.reason or "forbidden")
    if result.outcome is EditOutcome.REFUSED:
        raise Invalid("add", result.reason or "refused", detail=str(result))
    return {"order_no": order_no, "outcome": str(result)}


@router.post("/tags/bulk", response_model=BulkOutcome)
async def change_many(body: BulkTagChangeIn, key: Editor, commands: Commands) -> Any:
    results = await commands.change(body.order_nos, body.as_change(key.name), role=role_of(key))
    return {
        "outcomes": {order_no: str(result) for order_no, result in results.items()},
        "changed": sum(r.outcome is EditOutcome.CHANGED for r in results.values()),
    }


@router.post(
    "/tags/by-filter",
    response_model=DryRunOut,
    responses={
        202: {"model": FilterJobOut, "description": "the change started as a job"},
        **responses(409),
    },
)
async def change_by_filter(body: FilterTagChangeIn, key: Editor, commands: Commands) -> Any:
    """First call without ``confirm_count``: a dry run that answers how many orders would be
    touched. Call again with that count to start the change as a job."""
    started = await commands.change_by_filter(
        body.filter, body.as_change(key.name), body.confirm_count, role=role_of(key)
    )
    if isinstance(started, DryRun):
        return {
            "dry_run": True,
            "would_touch": started.would_touch,
            "confirm": f"send again with confirm_count={started.would_touch}",
        }
    return JSONResponse(
        {"job_id": started.job_id, "would_touch": started.orders, "status": "running"},
        status.HTTP_202_ACCEPTED,
    )

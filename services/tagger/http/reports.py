"""Reports over the tagged orders, as JSON or CSV (``format=csv``)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from services.tagger.http.deps import Filter, Reader, ReportsDep
from services.tagger.http.errors import responses
from services.tagger.reports import Period
from shared.exports import CSV_CONTENT, csv_table
from shared.reader_zone import ReaderTz
from shared.stored_order import DEFAULT_CURRENCY

router = APIRouter(tags=["reports"], responses=responses(401, 403, 422, 429, 503))
Format = Annotated[Literal["json", "csv"], Query(alias="format")]


def _table(description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 answered as a JSON array of rows, or as CSV with ``format=csv``."""
    rows = {"schema": {"type": "array", "items": {"type": "object"}}}
    return {200: {"description": description, "content": {"application/json": rows, **CSV_CONTENT}}}


def _as(output: str, table: list[dict[str, Any]], columns: list[str]) -> Response:
    return JSONResponse(table) if output == "json" else csv_table(table, columns)


@router.get(
    "/reports/tags-over-time",
    response_class=Response,
    responses=_table("orders per tag per period"),
)
async def tags_over_time(
    key: Reader,
    reports: ReportsDep,
    which: Filter,
    reader: ReaderTz,
    period: Period = "day",
    output: Format = "json",
) -> Any:
    """Orders per tag per day or ISO week, the days where the reader is (``tz``: a zone's
    name, each order's day at its date's offset, or a UTC offset; UTC by default)."""
    table = await reports.tags_over_time(which, period, reader.for_mongo)
    return _as(output, table, ["period", "tag", "orders"])


@router.get("/reports/tag-share", response_class=Response, responses=_table("share per tag"))
async def tag_share(
    key: Reader, reports: ReportsDep, which: Filter, output: Format = "json"
) -> Any:
    """Share of the matching orders that carry each tag."""
    return _as(output, await reports.tag_share(which), ["tag", "orders", "share"])


@router.get("/reports/top-customers", response_class=Response, responses=_table("top customers"))
async def top_customers(
    key: Reader,
    reports: ReportsDep,
    tag: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = DEFAULT_CURRENCY,
    output: Format = "json",
) -> Any:
    """Customers with the most spend in ``currency`` on orders carrying ``tag``."""
    return _as(
        output,
        await reports.top_customers(tag, limit, currency),
        ["customer_id", "name", "orders", "amount", "currency"],
    )

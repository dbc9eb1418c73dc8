"""Orders: find by tag and filter, page through, export as CSV, one order in detail."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from services.tagger.errors import NotFound
from services.tagger.http.deps import Filter, Queries, Reader
from services.tagger.http.errors import responses
from services.tagger.http.models import OrderPageOut
from services.tagger.queries import SortKey
from services.tagger.rules.schema import Language
from shared.exports import CSV, EXPORT_ROWS, MaxRows, Row, csv_export, export_responses

router = APIRouter(tags=["orders"], responses=responses(401, 403, 422, 429, 503))
PAGE_MAX = 200
EXPORT_COLUMNS = [
    "order_no",
    "customer_id",
    "status",
    "amount",
    "currency",
    "region",
    "created_at",
    "tags",
]


@router.get("/orders", response_model=OrderPageOut)
async def find_orders(
    key: Reader,
    queries: Queries,
    which: Filter,
    sort: SortKey = SortKey.NEWEST,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Any:
    """One page of matching orders in a stable order; pass ``next_cursor`` for the next page."""
    page = await queries.page(which, sort, limit, cursor)
    return {"orders": page.orders, "next_cursor": page.next_cursor}


async def order_rows(
    key: Reader,
    queries: Queries,
    which: Filter,
    sort: SortKey = SortKey.NEWEST,
    max_rows: MaxRows = EXPORT_ROWS,
) -> AsyncIterator[Row]:
    """The orders an export holds (read as it is sent), from its query parameters."""
    return queries.export(which, sort, max_rows)


@router.get(
    "/orders/export.csv",
    response_class=StreamingResponse,
    responses=export_responses(CSV, "matching orders as CSV"),
)
async def export_orders(
    rows: Annotated[AsyncIterator[Row], Depends(order_rows)],
) -> StreamingResponse:
    """Matching orders as CSV, streamed row by row (never the whole result in memory)."""
    # read by programs (no BOM: it would become part of the first column's name)
    return await csv_export(rows, EXPORT_COLUMNS, _cells, "orders.csv", bom=False)


def _cells(row: Row) -> list[Any]:
    return [
        row.get("order_no"),
        row.get("customer_id"),
        row.get("status"),
        row["amount"],
        row.get("currency"),
        row.get("region"),
        row["created_at"].isoformat(),
        " ".join(row.get("tag_names", [])),
    ]


@router.get("/orders/{order_no}", responses=responses(404))
async def get_order(
    order_no: str, key: Reader, queries: Queries, lang: Language | None = None
) -> dict[str, Any]:
    """The order, its tags with provenance and reasons (in ``lang`` where the rule gives
    them in it), and its tag history."""
    order = await queries.order(order_no, lang)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    return order

"""Orders: find by tag and filter, page through, export as CSV, one order in detail."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from services.tagger.errors import NotFound
from services.tagger.http.csv_output import CSV_CONTENT, csv_stream
from services.tagger.http.deps import Filter, Queries, Reader
from services.tagger.http.errors import responses
from services.tagger.http.models import OrderPageOut
from services.tagger.queries import SortKey
from services.tagger.rules.schema import Language

router = APIRouter(tags=["orders"], responses=responses(401, 403, 422, 429, 503))
PAGE_MAX = 200
EXPORT_MAX = 100_000
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


@router.get(
    "/orders/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": CSV_CONTENT, "description": "matching orders as CSV"}},
)
async def export_orders(
    key: Reader,
    queries: Queries,
    which: Filter,
    sort: SortKey = SortKey.NEWEST,
    max_rows: Annotated[int, Query(ge=1, le=EXPORT_MAX)] = 10_000,
) -> StreamingResponse:
    """Matching orders as CSV, streamed row by row (never the whole result in memory)."""
    rows = queries.export(which, sort, max_rows)
    first = await anext(rows, None)  # an outage answers 503 here, before the 200 is sent

    async def all_rows() -> Any:
        if first is not None:
            yield first
            async for row in rows:
                yield row

    return csv_stream(all_rows(), EXPORT_COLUMNS, _cells, "orders.csv")


def _cells(row: dict[str, Any]) -> list[Any]:
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

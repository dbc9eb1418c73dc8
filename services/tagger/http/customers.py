"""Customers and segments: find customers by tags and figures, export a segment (CSV for Excel,
JSONL for a marketing tool), a segment's size over time, one customer, manual customer tags."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.tagger.builtin_labels import reason_labels
from services.tagger.customers.segments import (
    MAX_DAYS,
    CustomerFilter,
    CustomerSort,
    Reasons,
    Segments,
    TagFilter,
)
from services.tagger.customers.tagging import CustomerTagging
from services.tagger.errors import NotFound
from services.tagger.governance import role_of
from services.tagger.http.deps import DATE_TIME, Commands, Editor, Reader, tagger_of
from services.tagger.http.errors import responses
from services.tagger.http.models import TagNameIn
from services.tagger.manual import ManualChange
from services.tagger.queries import AMOUNT_PATTERN, TagName
from services.tagger.rules.schema import TAG_NAME, Language
from shared.exports import (
    CSV,
    EXPORT_ROWS,
    JSONL,
    MaxRows,
    Row,
    csv_export,
    export_responses,
    jsonl_export,
)

router = APIRouter(tags=["customers"], responses=responses(401, 403, 422, 429, 503))
PAGE_MAX = 200
EXPORT_COLUMNS = [
    "customer_id",
    "name",
    "company",
    "vip",
    "orders",
    "spend",
    "spend_365d",
    "first_order_at",
    "last_order_at",
    "top_category",
    "tags",
]


def segments_of(request: Request) -> Segments:
    tagger = tagger_of(request)
    return Segments(tagger.stores.database, tagger.rules.customer_templates)


def customer_reasons(request: Request, lang: str | None) -> Reasons | None:
    """The customer rules' reasons in ``lang`` (None: as stored, in the rules' own words)."""
    if lang is None:
        return None
    return tagger_of(request).rules.customer_templates().in_language(lang, reason_labels(lang))


def customers_of(request: Request) -> CustomerTagging:
    return tagger_of(request).customers


SegmentsDep = Annotated[Segments, Depends(segments_of)]
CustomersDep = Annotated[CustomerTagging, Depends(customers_of)]


def tag_filter(
    all_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
    any_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006
    none_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006
) -> TagFilter:
    try:
        return TagFilter(all_tags=all_tags, any_tags=any_tags, none_tags=none_tags)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


def customer_filter(
    tags: Annotated[TagFilter, Depends(tag_filter)],
    spend_min: Annotated[str | None, Query(pattern=AMOUNT_PATTERN, examples=["1000"])] = None,
    spend_max: Annotated[str | None, Query(pattern=AMOUNT_PATTERN, examples=["50000"])] = None,
    orders_min: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    last_order_from: Annotated[
        str | None, Query(max_length=40, json_schema_extra=DATE_TIME)
    ] = None,
    last_order_to: Annotated[str | None, Query(max_length=40, json_schema_extra=DATE_TIME)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> CustomerFilter:
    """Query parameters into a ``CustomerFilter``; 422 naming the parameter when one is bad."""
    raw = {
        **tags.model_dump(),
        "spend_min": spend_min,
        "spend_max": spend_max,
        "orders_min": orders_min,
        "last_order_from": last_order_from,
        "last_order_to": last_order_to,
        "customer_id": customer_id,
    }
    try:
        return CustomerFilter.model_validate({k: v for k, v in raw.items() if v not in (None, [])})
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


Filter = Annotated[CustomerFilter, Depends(customer_filter)]


class CustomerPageOut(BaseModel):
    customers: list[dict[str, Any]]
    next_cursor: str | None


class SizePoint(BaseModel):
    date: str
    customers: int


class CustomerTagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: TagNameIn  # NFKC first, as an order's tag (回访-ｃａｌｌ is 回访-call)
    reason: str = Field(default="", max_length=300)


class CustomerTagOut(BaseModel):
    customer_id: str
    tag: str
    outcome: str


@router.get("/customers", response_model=CustomerPageOut)
async def find_customers(
    request: Request,
    key: Reader,
    segments: SegmentsDep,
    which: Filter,
    sort: CustomerSort = CustomerSort.SPEND,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    lang: Language | None = None,
) -> Any:
    """A segment: customers with all / any / none of the tags and figures in range, with their
    tags and figures, one page at a time (pass ``next_cursor`` for the next); rule reasons in
    ``lang`` where the rule gives it (a product by its name), else as stored."""
    reasons = customer_reasons(request, lang)
    customers, next_cursor = await segments.page(which, sort, limit, cursor, reasons)
    return {"customers": customers, "next_cursor": next_cursor}


async def segment_rows(
    key: Reader,
    segments: SegmentsDep,
    which: Filter,
    sort: CustomerSort = CustomerSort.SPEND,
    max_rows: MaxRows = EXPORT_ROWS,
) -> AsyncIterator[Row]:
    """The customers an export holds (read as it is sent), from its query parameters."""
    return segments.export(which, sort, max_rows)


SegmentRows = Annotated[AsyncIterator[Row], Depends(segment_rows)]


@router.get(
    "/customers/export.csv",
    response_class=StreamingResponse,
    responses=export_responses(CSV, "the segment as CSV (UTF-8, BOM)"),
)
async def export_customers_csv(rows: SegmentRows) -> StreamingResponse:
    """The segment as CSV for Excel (UTF-8 with a BOM), streamed row by row."""
    return await csv_export(rows, EXPORT_COLUMNS, _cells, "customers.csv")


def _cells(row: Row) -> list[Any]:
    return [*(row[c] for c in EXPORT_COLUMNS[:-1]), " ".join(row["tag_names"])]


@router.get(
    "/customers/export.jsonl",
    response_class=StreamingResponse,
    responses=export_responses(JSONL, "JSONL"),
)
async def export_customers_jsonl(
    request: Request,
    key: Reader,
    segments: SegmentsDep,
    which: Filter,
    sort: CustomerSort = CustomerSort.SPEND,
    max_rows: MaxRows = EXPORT_ROWS,
    lang: Language | None = None,
) -> StreamingResponse:
    """The segment as JSON Lines (one customer a line, tags with their reasons), for a
    marketing tool; rule reasons in ``lang`` as ``GET /customers`` gives them."""
    rows = segments.export(which, sort, max_rows, customer_reasons(request, lang))
    return await jsonl_export(rows, _without_tag_names, "customers.jsonl")


def _without_tag_names(row: Row) -> Row:
    return {k: v for k, v in row.items() if k != "tag_names"}


@router.get("/customers/segment-size", response_model=list[SizePoint])
async def segment_size(
    key: Reader,
    segments: SegmentsDep,
    which: Annotated[TagFilter, Depends(tag_filter)],
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
) -> Any:
    """How many customers were in the segment (by tags) at the end of each of the last
    ``days`` days (UTC), from the customers' tag history."""
    return await segments.size_over_time(which, days, datetime.now(UTC).date())


@router.get("/customers/{customer_id}", responses=responses(404))
async def get_customer(
    request: Request,
    customer_id: str,
    key: Reader,
    segments: SegmentsDep,
    lang: Language | None = None,
) -> dict[str, Any]:
    """The customer: tags with rule, version, reason (in ``lang`` where the rule gives it)
    and since when; tag history; figures; recent orders and their alerts."""
    customer = await segments.customer(customer_id, customer_reasons(request, lang))
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return customer


@router.post(
    "/customers/{customer_id}/tags",
    response_model=CustomerTagOut,
    responses=responses(403, 404, 409, 413),
)
async def add_customer_tag(
    customer_id: str, body: CustomerTagIn, key: Editor, customers: CustomersDep, commands: Commands
) -> Any:
    """Tag a customer by hand (the history names the key or person), as on orders: as the
    catalog lets the caller's role (403 naming who may), a tag the catalog stores and keeps
    active, or a free tag where allowed (422 naming ``tag``); never one the rules name from
    the data (``prefers:*``: it would claim figures the customer may not have)."""
    await commands.check_customer_tag(body.tag, role_of(key))
    await customers.tag_by_hand(customer_id, body.tag, by=key.name, reason=body.reason)
    return {"customer_id": customer_id, "tag": body.tag, "outcome": "added"}


@router.delete(
    "/customers/{customer_id}/tags/{tag}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(403, 404, 409),
)
async def remove_customer_tag(
    customer_id: str,
    tag: Annotated[str, Path(pattern=TAG_NAME)],
    key: Editor,
    customers: CustomersDep,
    commands: Commands,
) -> Response:
    """Remove a manual tag (a tag a rule gives follows the rule: 409), as the catalog lets the
    caller's role."""
    await commands.check_permissions(ManualChange((), (tag,), key.name), role_of(key))
    await customers.tag_by_hand(customer_id, tag, by=key.name, reason="", remove=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""The Tag API: find orders by tag, change tags one by one or in bulk, the catalog, reports.

Served by the tagger process beside its consumer: it owns the orders and tag collections, and
sharing the process shares the versioned store, the rule set and the Kafka publisher.
"""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.tagger.editing import TagEditing
from services.tagger.jobs import Jobs
from services.tagger.manual import ManualChange, TagChangeRefused
from services.tagger.queries import (
    BadCursor,
    OrderFilter,
    SortKey,
    TagName,
    after_cursor,
    encode_cursor,
    sort_spec,
)
from services.tagger.rules.schema import TAG_NAME, CatalogTag
from services.tagger.store import OrderStore
from shared.auth import ApiKey, Scope, require_scope
from shared.ratelimit import rate_limited

router = APIRouter()
Reader = Annotated[ApiKey, Depends(rate_limited(require_scope(Scope.READ)))]
Tagger = Annotated[ApiKey, Depends(rate_limited(require_scope(Scope.TAG)))]
Admin = Annotated[ApiKey, Depends(rate_limited(require_scope(Scope.ADMIN)))]
PAGE_MAX = 200
EXPORT_MAX = 100_000
LIST_FIELDS = {
    "_id": 0,
    "order_no": 1,
    "customer_id": 1,
    "status": 1,
    "amount_cents": 1,
    "currency": 1,
    "region": 1,
    "created_at": 1,
    "tag_names": 1,
}


def store_of(request: Request) -> OrderStore:
    store: OrderStore = request.app.state.store
    return store


def editing_of(request: Request) -> TagEditing:
    editing: TagEditing = request.app.state.editing
    return editing


def jobs_of(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


Store = Annotated[OrderStore, Depends(store_of)]
Editing = Annotated[TagEditing, Depends(editing_of)]
JobsDep = Annotated[Jobs, Depends(jobs_of)]


def order_filter(
    all_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
    any_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006
    none_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006
    family: Annotated[str | None, Query(max_length=32)] = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=32)] = None,
    amount_min: Annotated[str | None, Query(max_length=20)] = None,
    amount_max: Annotated[str | None, Query(max_length=20)] = None,
    created_from: Annotated[str | None, Query(max_length=40)] = None,
    created_to: Annotated[str | None, Query(max_length=40)] = None,
) -> OrderFilter:
    """Query parameters into an ``OrderFilter``; 422 naming the parameter when one is bad."""
    raw = {
        "all_tags": all_tags,
        "any_tags": any_tags,
        "none_tags": none_tags,
        "family": family,
        "status": status_,
        "customer_id": customer_id,
        "region": region,
        "amount_min": amount_min,
        "amount_max": amount_max,
        "created_from": created_from,
        "created_to": created_to,
    }
    try:
        return OrderFilter.model_validate({k: v for k, v in raw.items() if v not in (None, [])})
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


Filter = Annotated[OrderFilter, Depends(order_filter)]


def listed(document: dict[str, Any]) -> dict[str, Any]:
    cents = document.pop("amount_cents", 0)
    document["amount"] = f"{cents / 100:.2f}"
    return document


# ── find ───────────────────────────────────────────────────────────────────────────────


@router.get("/orders")
async def find_orders(
    key: Reader,
    store: Store,
    which: Filter,
    sort: SortKey = SortKey.NEWEST,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """One page of matching orders in a stable order; pass ``next_cursor`` for the next page."""
    query = which.to_mongo()
    if cursor:
        try:
            query = {"$and": [query, after_cursor(sort, cursor)]}
        except BadCursor as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"cursor: {error}") from None
    documents = (
        await store.orders.find(query, LIST_FIELDS).sort(sort_spec(sort)).limit(limit).to_list(None)
    )
    next_cursor = encode_cursor(sort, documents[-1]) if len(documents) == limit else None
    return {"orders": [listed(d) for d in documents], "next_cursor": next_cursor}


@router.get("/orders/export.csv")
async def export_orders(
    key: Reader,
    store: Store,
    which: Filter,
    sort: SortKey = SortKey.NEWEST,
    max_rows: Annotated[int, Query(ge=1, le=EXPORT_MAX)] = 10_000,
) -> StreamingResponse:
    """Matching orders as CSV, streamed row by row (never the whole result in memory)."""
    cursor = (
        store.orders.find(which.to_mongo(), LIST_FIELDS)
        .sort(sort_spec(sort))
        .limit(max_rows)
        .batch_size(500)
    )
    columns = [
        "order_no",
        "customer_id",
        "status",
        "amount",
        "currency",
        "region",
        "created_at",
        "tags",
    ]

    async def rows() -> AsyncIterator[str]:
        yield _csv_line(columns)
        async for document in cursor:
            doc = listed(document)
            yield _csv_line(
                [
                    doc.get("order_no"),
                    doc.get("customer_id"),
                    doc.get("status"),
                    doc["amount"],
                    doc.get("currency"),
                    doc.get("region"),
                    doc["created_at"].isoformat(),
                    " ".join(doc.get("tag_names", [])),
                ]
            )

    return StreamingResponse(
        rows(),
        media_type="text/csv",
        headers={"Content-Disposition": "attachment; filename=orders.csv"},
    )


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


@router.get("/orders/{order_no}")
async def get_order(order_no: str, key: Reader, store: Store) -> dict[str, Any]:
    """The order, its tags with provenance and reasons, and its tag history."""
    document = await store.orders.find_one({"order_no": order_no}, {"_id": 0})
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_no!r}")
    document["history"] = await store.history_of_order(order_no)
    return document


# ── change ─────────────────────────────────────────────────────────────────────────────


class TagChangeIn(BaseModel):
    add: list[Annotated[str, Field(pattern=TAG_NAME)]] = Field(default_factory=list, max_length=20)
    remove: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    reason: Annotated[str, Field(max_length=300)] = "changed by hand"

    def as_change(self, who: str) -> ManualChange:
        if not self.add and not self.remove:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "add or remove: give at least one tag"
            )
        return ManualChange(tuple(self.add), tuple(self.remove), who, self.reason)


class BulkTagChangeIn(TagChangeIn):
    order_nos: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=1000)


class FilterTagChangeIn(TagChangeIn):
    filter: OrderFilter
    confirm_count: int | None = Field(
        default=None, description="the count a dry run answered; without it, nothing changes"
    )


@router.post("/orders/{order_no}/tags")
async def change_order_tags(
    order_no: str, body: TagChangeIn, key: Tagger, editing: Editing
) -> dict[str, Any]:
    outcome = await _change(editing, [order_no], body.as_change(key.name))
    result = outcome[order_no]
    if result == "not_found":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_no!r}")
    if result.startswith("refused"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, result)
    return {"order_no": order_no, "outcome": result}


@router.post("/tags/bulk")
async def change_many(body: BulkTagChangeIn, key: Tagger, editing: Editing) -> dict[str, Any]:
    outcomes = await _change(editing, body.order_nos, body.as_change(key.name))
    return {"outcomes": outcomes, "changed": sum(o == "changed" for o in outcomes.values())}


@router.post("/tags/by-filter")
async def change_by_filter(
    body: FilterTagChangeIn, key: Tagger, store: Store, editing: Editing, jobs: JobsDep
) -> JSONResponse:
    """First call without ``confirm_count``: a dry run that answers how many orders would be
    touched. Call again with that count to start the change as a job."""
    change = body.as_change(key.name)
    try:
        await editing.check(change)
    except TagChangeRefused as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    count = await store.orders.count_documents(body.filter.to_mongo())
    if body.confirm_count is None:
        return JSONResponse(
            {
                "dry_run": True,
                "would_touch": count,
                "confirm": f"send again with confirm_count={count}",
            }
        )
    if body.confirm_count != count:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the filter now matches {count} orders, not {body.confirm_count}; "
            "check again and confirm the new count",
        )
    job_id = await jobs.start("tag_by_filter", body.filter, change, count)
    return JSONResponse(
        {"job_id": job_id, "would_touch": count, "status": "running"}, status.HTTP_202_ACCEPTED
    )


async def _change(
    editing: TagEditing, order_nos: list[str], change: ManualChange
) -> dict[str, str]:
    try:
        results = await editing.change(order_nos, change, f"request:{uuid.uuid4().hex}")
        return {order_no: str(result) for order_no, result in results.items()}
    except TagChangeRefused as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, key: Reader, jobs: JobsDep) -> dict[str, Any]:
    job = await jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r}")
    return job


# ── catalog ────────────────────────────────────────────────────────────────────────────


class CatalogTagPatch(BaseModel):
    description: Annotated[str, Field(max_length=300)] | None = None
    colour: Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")] | None = None
    active: bool | None = None


class RenameIn(BaseModel):
    new_name: Annotated[str, Field(pattern=TAG_NAME)]


class MergeIn(BaseModel):
    into: Annotated[str, Field(pattern=TAG_NAME)]


@router.get("/tags")
async def list_tags(key: Reader, store: Store) -> list[dict[str, Any]]:
    """The catalog with how many orders carry each tag."""
    usage = await (
        await store.orders.aggregate(
            [
                {"$unwind": "$tag_names"},
                {"$group": {"_id": "$tag_names", "orders": {"$sum": 1}}},
            ]
        )
    ).to_list(None)
    counts = {row["_id"]: row["orders"] for row in usage}
    catalog = await store.catalog()
    return [
        {**tag.model_dump(), "orders": counts.get(name, 0)} for name, tag in sorted(catalog.items())
    ]


@router.get("/tags/unused")
async def unused_tags(
    key: Reader, store: Store, days: Annotated[int, Query(ge=1, le=3650)] = 90
) -> dict[str, Any]:
    """Catalog tags that no order created in the last ``days`` days carries: candidates for the
    periodic review."""
    since = datetime.now(UTC) - timedelta(days=days)
    used = await (
        await store.orders.aggregate(
            [
                {"$match": {"created_at": {"$gte": since}}},
                {"$unwind": "$tag_names"},
                {"$group": {"_id": "$tag_names"}},
            ]
        )
    ).to_list(None)
    used_names = {row["_id"] for row in used}
    catalog = await store.catalog()
    return {"days": days, "unused": sorted(n for n in catalog if n not in used_names)}


@router.post("/tags", status_code=status.HTTP_201_CREATED)
async def create_tag(tag: CatalogTag, key: Admin, store: Store) -> dict[str, Any]:
    try:
        await store.tag_catalog.insert_one({**tag.model_dump(), "created_at": datetime.now(UTC)})
    except DuplicateKeyError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"tag {tag.name!r} exists") from None
    return tag.model_dump()


@router.patch("/tags/{name}")
async def update_tag(name: str, patch: CatalogTagPatch, key: Admin, store: Store) -> dict[str, Any]:
    changes = patch.model_dump(exclude_none=True)
    if not changes:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "nothing to change")
    result = await store.tag_catalog.find_one_and_update(
        {"name": name},
        {"$set": {**changes, "updated_at": datetime.now(UTC)}},
        projection={"_id": 0},
        return_document=ReturnDocument.AFTER,
    )
    if result is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tag {name!r} in the catalog")
    return result


@router.post("/tags/{name}/rename", status_code=status.HTTP_202_ACCEPTED)
async def rename_tag(
    name: str, body: RenameIn, request: Request, key: Admin, store: Store, jobs: JobsDep
) -> dict[str, Any]:
    """The catalog entry gets the new name; every order carrying the old one is rewritten (job)."""
    entry = await _movable(request, store, name)
    try:
        await store.tag_catalog.insert_one(
            {**entry, "name": body.new_name, "created_at": datetime.now(UTC)}
        )
    except DuplicateKeyError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"tag {body.new_name!r} exists: merge into it instead"
        ) from None
    return await _move(jobs, store, "rename", name, body.new_name, key.name)


@router.post("/tags/{name}/merge", status_code=status.HTTP_202_ACCEPTED)
async def merge_tag(
    name: str, body: MergeIn, request: Request, key: Admin, store: Store, jobs: JobsDep
) -> dict[str, Any]:
    """Orders carrying ``name`` carry ``into`` instead; ``name`` leaves the catalog (job)."""
    await _movable(request, store, name)
    if await store.tag_catalog.find_one({"name": body.into}) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tag {body.into!r} to merge into")
    return await _move(jobs, store, "merge", name, body.into, key.name)


async def _movable(request: Request, store: OrderStore, name: str) -> dict[str, Any]:
    entry = await store.tag_catalog.find_one(
        {"name": name}, {"_id": 0, "created_at": 0, "updated_at": 0}
    )
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tag {name!r} in the catalog")
    rules = request.app.state.rules.current.rules
    if any(rule.tag == name for rule in rules):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"rules give the tag {name!r}: change it in the rule file instead",
        )
    return entry


async def _move(
    jobs: Jobs, store: OrderStore, kind: str, old: str, new: str, who: str
) -> dict[str, Any]:
    which = OrderFilter(all_tags=[old])
    count = await store.orders.count_documents(which.to_mongo())
    change = ManualChange((new,), (old,), who, f"{kind} of tag {old} into {new}")
    job_id = await jobs.start(kind, which, change, count, after={"delete_catalog_tag": old})
    return {"job_id": job_id, "orders": count, "status": "running"}


# ── reports ────────────────────────────────────────────────────────────────────────────

PERIOD_FORMATS = {"day": "%Y-%m-%d", "week": "%G-W%V"}


@router.get("/reports/tags-over-time")
async def tags_over_time(
    key: Reader,
    store: Store,
    which: Filter,
    period: Literal["day", "week"] = "day",
    output: Literal["json", "csv"] = Query("json", alias="format"),
) -> Any:
    """Orders per tag per day or ISO week."""
    rows = await (
        await store.orders.aggregate(
            [
                {"$match": which.to_mongo()},
                {"$unwind": "$tag_names"},
                {
                    "$group": {
                        "_id": {
                            "period": {
                                "$dateToString": {
                                    "format": PERIOD_FORMATS[period],
                                    "date": "$created_at",
                                }
                            },
                            "tag": "$tag_names",
                        },
                        "orders": {"$sum": 1},
                    }
                },
                {"$sort": {"_id.period": 1, "_id.tag": 1}},
            ]
        )
    ).to_list(None)
    table = [
        {"period": r["_id"]["period"], "tag": r["_id"]["tag"], "orders": r["orders"]} for r in rows
    ]
    return _as(output, table, ["period", "tag", "orders"])


@router.get("/reports/tag-share")
async def tag_share(
    key: Reader,
    store: Store,
    which: Filter,
    output: Literal["json", "csv"] = Query("json", alias="format"),
) -> Any:
    """Share of the matching orders that carry each tag."""
    [facets] = await (
        await store.orders.aggregate(
            [
                {"$match": which.to_mongo()},
                {
                    "$facet": {
                        "total": [{"$count": "orders"}],
                        "tags": [
                            {"$unwind": "$tag_names"},
                            {"$group": {"_id": "$tag_names", "orders": {"$sum": 1}}},
                            {"$sort": {"orders": -1, "_id": 1}},
                        ],
                    }
                },
            ]
        )
    ).to_list(None)
    total = facets["total"][0]["orders"] if facets["total"] else 0
    table = [
        {
            "tag": r["_id"],
            "orders": r["orders"],
            "share": round(r["orders"] / total, 4) if total else 0.0,
        }
        for r in facets["tags"]
    ]
    return _as(output, table, ["tag", "orders", "share"])


@router.get("/reports/top-customers")
async def top_customers(
    key: Reader,
    store: Store,
    tag: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    output: Literal["json", "csv"] = Query("json", alias="format"),
) -> Any:
    """Customers with the most spend on orders carrying ``tag``."""
    rows = await (
        await store.orders.aggregate(
            [
                {"$match": {"tag_names": tag}},
                {
                    "$group": {
                        "_id": "$customer_id",
                        "orders": {"$sum": 1},
                        "amount_cents": {"$sum": "$amount_cents"},
                    }
                },
                {"$sort": {"amount_cents": -1, "_id": 1}},
                {"$limit": limit},
            ]
        )
    ).to_list(None)
    table = [
        {"customer_id": r["_id"], "orders": r["orders"], "amount": f"{r['amount_cents'] / 100:.2f}"}
        for r in rows
    ]
    return _as(output, table, ["customer_id", "orders", "amount"])


def _as(output: str, table: list[dict[str, Any]], columns: list[str]) -> Any:
    if output == "json":
        return table
    return Response(
        "".join([_csv_line(columns)] + [_csv_line([r[c] for c in columns]) for r in table]),
        media_type="text/csv",
    )

"""The queries the Tag API's pages need, over MongoDB: order pages, exports, the order detail,
tag usage and the reports. The aggregation pipelines live here, beside the store; no route
touches a collection."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.queries import OrderFilter, SortKey, after_cursor, encode_cursor, sort_spec

Period = Literal["day", "week"]
PERIOD_FORMATS: dict[str, str] = {"day": "%Y-%m-%d", "week": "%G-W%V"}
LISTED_FIELDS = {
    "_id": 0,
    "order_no": 1,
    "customer_id": 1,
    "order.customer.name": 1,
    "status": 1,
    "amount_cents": 1,
    "currency": 1,
    "region": 1,
    "created_at": 1,
    "tag_names": 1,
}


def money(cents: int) -> str:
    """Cents as the decimal string the Tag API answers (``"1234.50"``)."""
    return f"{cents / 100:.2f}"


def listed(document: dict[str, Any]) -> dict[str, Any]:
    """An order as a list row: the amount in currency units, not cents; the customer's name
    beside the id (staff look for people by name)."""
    cents = document.pop("amount_cents", 0)
    document["amount"] = money(cents)
    customer = document.pop("order", {}).get("customer") or {}
    document["customer_name"] = customer.get("name")
    return document


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[dict[str, Any]]
    next_cursor: str | None


class ReadModel:
    """Read-only queries over the tagger's collections (MongoDB adapter)."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._orders = database["orders"]
        self._history = database["tag_history"]
        self._jobs = database["tag_jobs"]

    async def page(
        self, which: OrderFilter, sort: SortKey, limit: int, cursor: str | None = None
    ) -> OrderPage:
        """One page in a stable order; raises ``BadCursor`` for a cursor this API did not make."""
        query = which.to_mongo()
        if cursor:
            query = {"$and": [query, after_cursor(sort, cursor)]}
        found = self._orders.find(query, LISTED_FIELDS).sort(sort_spec(sort)).limit(limit)
        documents = await found.to_list(None)
        next_cursor = encode_cursor(sort, documents[-1]) if len(documents) == limit else None
        return OrderPage([listed(d) for d in documents], next_cursor)

    async def export(
        self, which: OrderFilter, sort: SortKey, max_rows: int
    ) -> AsyncIterator[dict[str, Any]]:
        """Matching orders as list rows, read in batches (never the whole result in memory)."""
        cursor = (
            self._orders.find(which.to_mongo(), LISTED_FIELDS)
            .sort(sort_spec(sort))
            .limit(max_rows)
            .batch_size(500)
        )
        async for document in cursor:
            yield listed(document)

    async def order(self, order_no: str) -> dict[str, Any] | None:
        """The stored order with its tags, and its tag history oldest first."""
        document = await self._orders.find_one({"order_no": order_no}, {"_id": 0})
        if document is None:
            return None
        history = self._history.find({"order_no": order_no}, {"_id": 0}).sort("at", 1)
        document["history"] = await history.to_list(None)
        return document

    async def count(self, which: OrderFilter) -> int:
        return await self._orders.count_documents(which.to_mongo())

    async def running_jobs(self) -> list[str]:
        cursor = self._jobs.find({"status": "running"}, {"job_id": 1})
        return [str(job["job_id"]) async for job in cursor]

    async def moving_job(self, tag: str) -> str | None:
        """The id of a running rename or merge that moves orders off ``tag``."""
        job = await self._jobs.find_one(
            {"status": "running", "kind": {"$in": ["rename", "merge"]}, "filter.all_tags": tag},
            {"job_id": 1},
        )
        return None if job is None else str(job["job_id"])

    async def moved(self, tag: str) -> tuple[str, str] | None:
        """How ``tag`` left the catalog, if a rename or merge took it: (kind, new name)."""
        cursor = (
            self._jobs.find(
                {"kind": {"$in": ["rename", "merge"]}, "filter.all_tags": tag},
                {"kind": 1, "change": 1},
            )
            .sort("created_at", -1)
            .limit(1)
        )
        for job in await cursor.to_list(None):
            return str(job["kind"]), str(job["change"]["add"][0])
        return None

    async def tag_usage(self) -> dict[str, int]:
        """How many orders carry each tag."""
        rows = await self._aggregate(
            [{"$unwind": "$tag_names"}, {"$group": {"_id": "$tag_names", "orders": {"$sum": 1}}}]
        )
        return {row["_id"]: row["orders"] for row in rows}

    async def tags_used_since(self, since: datetime) -> set[str]:
        rows = await self._aggregate(
            [
                {"$match": {"created_at": {"$gte": since}}},
                {"$unwind": "$tag_names"},
                {"$group": {"_id": "$tag_names"}},
            ]
        )
        return {row["_id"] for row in rows}

    async def tags_over_time(self, which: OrderFilter, period: Period) -> list[dict[str, Any]]:
        """Orders per tag per day or ISO week, oldest period first."""
        rows = await self._aggregate(
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
        return [
            {"period": r["_id"]["period"], "tag": r["_id"]["tag"], "orders": r["orders"]}
            for r in rows
        ]

    async def tag_share(self, which: OrderFilter) -> list[dict[str, Any]]:
        """Share of the matching orders that carry each tag, most carried first."""
        [facets] = await self._aggregate(
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
        total = facets["total"][0]["orders"] if facets["total"] else 0
        return [
            {
                "tag": r["_id"],
                "orders": r["orders"],
                "share": round(r["orders"] / total, 4) if total else 0.0,
            }
            for r in facets["tags"]
        ]

    async def top_customers(self, tag: str, limit: int) -> list[dict[str, Any]]:
        """Customers with the most spend on orders carrying ``tag``."""
        rows = await self._aggregate(
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
        return [
            {"customer_id": r["_id"], "orders": r["orders"], "amount": money(r["amount_cents"])}
            for r in rows
        ]

    async def _aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cursor = await self._orders.aggregate(pipeline)
        return await cursor.to_list(None)

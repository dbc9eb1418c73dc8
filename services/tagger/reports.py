"""The Tag API's reports over the tagged orders: tags per day or week, each tag's share, the
customers who spend most on a tag. Aggregation pipelines over MongoDB, answered as rows (the
routes in ``http/reports.py`` give them as JSON or CSV)."""

from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from services.tagger.queries import OrderFilter
from shared.errors import InvalidInput
from shared.money import cents_text
from shared.stored_order import DEFAULT_CURRENCY

Period = Literal["day", "week"]
PERIOD_FORMATS: dict[str, str] = {"day": "%Y-%m-%d", "week": "%G-W%V"}
UNKNOWN_TIME_ZONE = 40485  # a zone the store's database does not hold (MongoDB, the local server)


class Reports:
    """Read-only aggregations over the ``orders`` collection (MongoDB adapter)."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._orders = database["orders"]

    async def tags_over_time(
        self, which: OrderFilter, period: Period, zone: str = "+00:00"
    ) -> list[dict[str, Any]]:
        """Orders per tag per day or ISO week, oldest period first; a period's bounds where
        the reader is (``zone``: an IANA name, each order at its own date's offset, or a UTC
        offset). A zone ours knows and the store's does not (an older MongoDB's zone
        database) is the reader's to change: a 422 naming ``tz``, not a 500."""
        pipeline: list[dict[str, Any]] = [
            {"$match": which.to_mongo()},
            {"$unwind": "$tag_names"},
            {
                "$group": {
                    "_id": {
                        "period": {
                            "$dateToString": {
                                "format": PERIOD_FORMATS[period],
                                "date": "$created_at",
                                "timezone": zone,
                            }
                        },
                        "tag": "$tag_names",
                    },
                    "orders": {"$sum": 1},
                }
            },
            {"$sort": {"_id.period": 1, "_id.tag": 1}},
        ]
        try:
            rows = await self._aggregate(pipeline)
        except OperationFailure as refused:
            if refused.code != UNKNOWN_TIME_ZONE:
                raise
            raise InvalidInput("tz", f"the store does not know the time zone {zone!r}") from None
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

    async def top_customers(
        self, tag: str, limit: int, currency: str = DEFAULT_CURRENCY
    ) -> list[dict[str, Any]]:
        """Customers with the most spend in ``currency`` on orders carrying ``tag`` (no sum
        across currencies means anything), each with the name their newest order gives."""
        paid_in: Any = currency if currency != DEFAULT_CURRENCY else {"$in": [currency, None]}
        rows = await self._aggregate(
            [
                {"$match": {"tag_names": tag, "currency": paid_in}},
                {"$sort": {"created_at": 1}},
                {
                    "$group": {
                        "_id": "$customer_id",
                        "name": {"$last": "$order.customer.name"},
                        "orders": {"$sum": 1},
                        "amount_cents": {"$sum": "$amount_cents"},
                    }
                },
                {"$sort": {"amount_cents": -1, "_id": 1}},
                {"$limit": limit},
            ]
        )
        return [
            {
                "customer_id": r["_id"],
                "name": r.get("name") or "",
                "orders": r["orders"],
                "amount": cents_text(r["amount_cents"]),
                "currency": currency,
            }
            for r in rows
        ]

    async def _aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cursor = await self._orders.aggregate(pipeline)
        return await cursor.to_list(None)

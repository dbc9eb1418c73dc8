"""The queries the Tag API's pages need, over MongoDB: order pages, exports, the order detail,
tag usage and the jobs a tag change waits on. Beside the store, so no route touches a
collection; the reports are ``reports.py``."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.builtin_labels import reason_labels
from services.tagger.creation_timeline import CreationTimeline
from services.tagger.queries import (
    LISTED_FIELDS,
    OrderFilter,
    SortKey,
    after_cursor,
    encode_cursor,
    listed,
    sort_spec,
)
from services.tagger.store import ServerKind, Templates
from shared.stored_history import (
    applied_order,
    first_change_at,
    readable_history,
    with_first_change,
)
from shared.stored_order import (
    applied_event_ids,
    currency_of,
    figures_record,
    order_as_ingested,
)
from shared.stored_tags import order_tags


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[dict[str, Any]]
    next_cursor: str | None


class ReadModel:
    """Read-only queries over the tagger's collections (MongoDB adapter)."""

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        timeline_min_orders: int = 20_000,
        timeline_rebuild_s: float = 60.0,
        templates: Templates = None,
        *,
        unique_indexes_only: bool | None = None,
    ) -> None:
        """``unique_indexes_only``: whether the server is the local one that needs the
        creation timeline (None: asked of the server on first use; ``store.ServerKind``)."""
        self._templates = templates
        self._server = ServerKind(database, unique_indexes_only)
        self._orders = database["orders"]
        self._history = database["tag_history"]
        self._jobs = database["tag_jobs"]
        # below this many orders a plain query is fast everywhere: no timeline kept
        self._timeline_min_orders = timeline_min_orders
        self._timeline = CreationTimeline(self._orders, timeline_rebuild_s)

    async def page(
        self, which: OrderFilter, sort: SortKey, limit: int, cursor: str | None = None
    ) -> OrderPage:
        """One page in a stable order; raises ``BadCursor`` for a cursor this API did not make.
        MongoDB answers the plain query from its indexes (``OrderStore.ensure_indexes``); the
        local server, which walks no index in order, is walked along the creation timeline."""
        after = after_cursor(sort, cursor) if cursor else None
        if (
            sort in (SortKey.NEWEST, SortKey.OLDEST)
            and which.family is None
            and await self._server.unique_indexes_only()
        ):
            stored = await self._orders.estimated_document_count()
            if stored >= self._timeline_min_orders and await self._timeline.current(stored):
                documents = await self._timeline.walk(which, sort, limit, after)
                if documents is not None:
                    return self._page_of(sort, limit, documents)
        query = which.to_mongo()
        if after is not None:
            query = {"$and": [query, after]}
        found = self._orders.find(query, LISTED_FIELDS).sort(sort_spec(sort)).limit(limit)
        return self._page_of(sort, limit, await found.to_list(None))

    @staticmethod
    def _page_of(sort: SortKey, limit: int, documents: list[dict[str, Any]]) -> OrderPage:
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

    async def order(self, order_no: str, language: str | None = None) -> dict[str, Any] | None:
        """The stored order with its tags, and its tag history oldest first, every tag in
        full with its reason rendered (stored tags are compact, ``store.stored_tag``), in
        ``language`` where its rule gives the reason in it."""
        document = await self._orders.find_one({"order_no": order_no}, {"_id": 0})
        if document is None:
            return None
        templates = (
            self._templates().in_language(language, reason_labels(language))
            if self._templates is not None
            else None
        )
        document["order"] = order_as_ingested(document)
        document["applied_events"] = applied_event_ids(document)
        document["currency"] = currency_of(document)
        tags = order_tags(document, templates)
        if "figures" in document:  # the names the API gives (either stored form)
            document["figures"] = figures_record(document["figures"])
        history = with_first_change(
            await self._history.find({"order_no": order_no}, {"_id": 0}).to_list(None),
            order_no,
            document["applied_events"],
            first_change_at(document),
        )
        history.sort(key=applied_order)
        document["tags"] = [tag.model_dump(mode="json") for tag in tags]
        for stored_only in ("tags_at", "tags_rule_version", "tag_keys", "first_at"):
            document.pop(stored_only, None)
        document["history"] = readable_history(history, tags, templates)
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

    async def tags_in_use(self) -> set[str]:
        """The tags some order carries (the ``tag_names`` index's keys: no order is read)."""
        return {str(name) for name in await self._orders.distinct("tag_names")}

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

    async def _aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cursor = await self._orders.aggregate(pipeline)
        return await cursor.to_list(None)

"""The queries the Tag API's pages need, over MongoDB: order pages, exports, the order detail,
tag usage and the jobs a tag change waits on. Beside the store, so no route touches a
collection; the reports are ``reports.py``."""

import asyncio
import bisect
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.builtin_labels import reason_labels
from services.tagger.queries import (
    OrderFilter,
    SortKey,
    after_cursor,
    encode_cursor,
    sort_spec,
    tag_key,
)
from services.tagger.store import ServerKind, Templates
from shared.money import cents_text, to_cents
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
from shared.tasks import cancel_and_wait

log = structlog.get_logger("read_model")
# The local server's ``$in`` costs more per value the longer the list (it matches each order
# it reads against the whole list): at 100,000 orders, 250 numbers read in 13-29 ms, 1,000 in
# 216-489 ms; 1,000 tag keys that find nothing 72-94 ms. Short lists, many at once.
WINDOW = 250  # order numbers in one ``$in`` read of the timeline walk
KEYED_WINDOW = 200  # tag keys in one ``$in`` read of the timeline walk
KEY_LOOKUPS_PER_READ = 2  # a key that finds nothing costs about half an order read
UNKNOWN_RATE = 0.25  # the share of candidates a filter is taken to match before any is read
MARGIN = 1.3  # read this much more than the rate says the page needs


def round_size(wanted: int, rate: float, walked: int, window_size: int) -> int:
    """How many candidates the next round of a timeline walk reads: enough to find ``wanted``
    more at ``rate`` (twice as many as read so far when none matched yet), at most
    ``MAX_WINDOWS_IN_FLIGHT`` windows."""
    size = math.ceil(wanted / rate * MARGIN) if rate > 0 else walked * 2
    return max(min(size, window_size * MAX_WINDOWS_IN_FLIGHT), wanted, 1)


MAX_WINDOWS_IN_FLIGHT = 16
# Measured at 100,000 orders (bench data, load ~22): a tag key costs the local server ~46 µs
# found or not (a binary search of its index whose every comparison serialises both keys);
# an order found costs ~2.2 µs per key of the list it was found with (the server matches its
# ``tag_keys`` against the whole list: 0.45 ms with 200 keys, 0.05 ms with 11); a read costs
# ~0.3 ms whatever its size. So a tag many orders carry is read in short lists.
MATCH_US_PER_FOUND_AND_KEY = 2.2
READ_US = 300.0
SHORTEST_KEYED_READ = 20


def keyed_read_size(found_per_key: float) -> int:
    """Tag keys in one read when ``found_per_key`` of them find an order: per key, a list of
    n keys costs ``READ_US / n + MATCH_US_PER_FOUND_AND_KEY * found_per_key * n``, least at
    n = sqrt(READ_US / (MATCH_US_PER_FOUND_AND_KEY * found_per_key))."""
    if found_per_key <= 0:
        return KEYED_WINDOW
    best = math.sqrt(READ_US / (MATCH_US_PER_FOUND_AND_KEY * found_per_key))
    return max(SHORTEST_KEYED_READ, min(KEYED_WINDOW, round(best)))


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


def listed(document: dict[str, Any]) -> dict[str, Any]:
    """An order as a list row: the amount in currency units, not cents; the customer's name
    beside the id (staff look for people by name)."""
    cents = document.pop("amount_cents", 0)
    document["amount"] = cents_text(cents)
    document["currency"] = currency_of(document)
    customer = document.pop("order", {}).get("customer") or {}
    document["customer_name"] = customer.get("name")
    return document


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[dict[str, Any]]
    next_cursor: str | None


def matches(which: OrderFilter, document: dict[str, Any]) -> bool:
    """``which.to_mongo()`` evaluated on one listed document (every field but ``family``)."""
    names = set(document.get("tag_names") or ())
    if not names.issuperset(which.all_tags):
        return False
    if which.any_tags and names.isdisjoint(which.any_tags):
        return False
    if not names.isdisjoint(which.none_tags):
        return False
    status = which.status.value if which.status is not None else None
    for field, wanted in (
        ("status", status),
        ("customer_id", which.customer_id),
        ("region", which.region),
    ):
        if wanted is not None and document.get(field) != wanted:
            return False
    cents = document.get("amount_cents")
    if which.amount_min is not None and not (
        isinstance(cents, int) and cents >= to_cents(which.amount_min)
    ):
        return False
    if which.amount_max is not None and not (
        isinstance(cents, int) and cents <= to_cents(which.amount_max)
    ):
        return False
    created = document["created_at"]
    if which.created_from is not None and created < which.created_from:
        return False
    return which.created_to is None or created < which.created_to


class CreationTimeline:
    """Every stored order's (created_at, order_no), oldest first: the two things about an order
    that never change, so tag changes never make it stale; only new orders do. Beside it, as
    of the build: how many orders carried each tag (to pick the rarest tag of a filter) and
    the orders stored with tags but without ``tag_keys`` (before the field existed).

    Why: the local MongoDB-wire server (mongo-java-server) walks no index in order: it
    answers a filtered, sorted find by reading every candidate and sorting them (seconds at
    100,000 orders), but answers ``order_no $in`` and ``tag_keys $in`` from its unique indexes
    in milliseconds.
    Walking this timeline from either end and reading candidates by key pages a tag-filtered
    list without a scan. It is used only while it holds every stored order (the collection's
    count says so); when orders arrive, pages take the plain query until a rebuild (at most
    one per ``rebuild_s``) has caught up."""

    def __init__(self, orders: AsyncCollection[dict[str, Any]], rebuild_s: float) -> None:
        self._orders = orders
        self._rebuild_s = rebuild_s
        self.keys: list[tuple[datetime, str]] = []
        self.tag_counts: Counter[str] = Counter()
        self.without_tag_keys: frozenset[str] = frozenset()
        self._built_at = float("-inf")
        self._building: asyncio.Task[None] | None = None

    async def current(self, stored: int) -> bool:
        """Whether the timeline holds all ``stored`` orders; starts a rebuild when it does not.
        The first build is waited for (its scan costs what one plain query would)."""
        if len(self.keys) == stored:
            return True
        first = not self.keys
        if self._building is None and (
            first or time.monotonic() - self._built_at > self._rebuild_s
        ):
            self._building = asyncio.create_task(self._build())
        if first and self._building is not None:
            await asyncio.shield(self._building)
            return len(self.keys) == stored
        return False

    async def _build(self) -> None:
        try:
            fields = {"_id": 0, "order_no": 1, "created_at": 1, "tag_names": 1, "tag_keys": 1}
            keys, counts, without = [], Counter[str](), set()
            async for d in self._orders.find({}, fields).batch_size(10_000):
                keys.append((d["created_at"], d["order_no"]))
                counts.update(d.get("tag_names") or ())
                if "tag_keys" not in d and d.get("tag_names"):  # none: no tag to look up
                    without.add(d["order_no"])
            keys.sort()
            self.keys, self.tag_counts, self.without_tag_keys = keys, counts, frozenset(without)
            log.info("creation_timeline_built", orders=len(keys), without_tag_keys=len(without))
        except Exception as error:  # a page then takes the plain query; the next one retries
            log.warning("creation_timeline_failed", error=repr(error))
        finally:
            self._built_at = time.monotonic()
            self._building = None

    def anchor(self, which: OrderFilter) -> list[str]:
        """The tags a candidate must carry one of to be worth reading: the rarest of the
        filter's ``all_tags``, else its ``any_tags``; none when it names no tag it needs."""
        if which.all_tags:
            return [min(which.all_tags, key=lambda tag: (self.tag_counts[tag], tag))]
        return list(which.any_tags)

    def span(self, which: OrderFilter, sort: SortKey, after: dict[str, Any] | None) -> range:
        """The positions in ``keys`` the page may come from, in the order it lists them."""
        start, end = 0, len(self.keys)
        if which.created_from is not None:
            start = bisect.bisect_left(self.keys, (which.created_from, ""))
        if which.created_to is not None:
            end = min(end, bisect.bisect_left(self.keys, (which.created_to, "")))
        if after is not None:  # the cursor's (created_at, order_no), as ``after_cursor`` read it
            _, same = after["$or"]
            position = (same["created_at"], next(iter(same["order_no"].values())))
            if sort is SortKey.NEWEST:
                end = min(end, bisect.bisect_left(self.keys, position))
            else:
                start = max(start, bisect.bisect_right(self.keys, position))
        if sort is SortKey.NEWEST:
            return range(end - 1, start - 1, -1)
        return range(start, end)


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
                documents = await self._walk_timeline(which, sort, limit, after)
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

    async def _walk_timeline(
        self,
        which: OrderFilter,
        sort: SortKey,
        limit: int,
        after: dict[str, Any] | None,
        budget: int = 20_000,
    ) -> list[dict[str, Any]] | None:
        """In list order from the cursor's position: read the candidates that may match and
        keep those the filter matches. ``None`` past ``budget`` candidates read whole (a
        rare filter): the plain query answers instead.

        A filter that needs a tag reads only the candidates carrying it (``tag_keys $in``,
        see ``queries.tag_keys``): a key that finds no order costs a fraction of an order
        read, so such candidates count less against the budget. Each round reads as many
        candidates as should fill the page at the rate the filter matched so far (before
        any: the anchor tag's share of orders), in windows read at once (the local server
        answers concurrent reads on other threads)."""
        timeline = self._timeline
        keys, anchor = timeline.keys, timeline.anchor(which)
        positions = timeline.span(which, sort, after)
        window_size = KEYED_WINDOW // len(anchor) if anchor else WINDOW
        cost = len(anchor) / KEY_LOOKUPS_PER_READ if anchor else 1.0
        carried = sum(timeline.tag_counts[tag] for tag in anchor)
        rate = carried / len(keys) if anchor and carried and keys else UNKNOWN_RATE
        # candidates in one read: a round holds up to MAX_WINDOWS_IN_FLIGHT windows' worth
        read_size = max(keyed_read_size(rate / len(anchor)) // len(anchor), 1) if anchor else WINDOW
        reads_in_flight = asyncio.Semaphore(MAX_WINDOWS_IN_FLIGHT)
        page_full = asyncio.Event()

        async def read(numbers: list[str]) -> dict[str, dict[str, Any]]:
            async with reads_in_flight:
                if page_full.is_set():  # not sent: the page filled from earlier reads
                    return {}
                return await self._candidates(numbers, anchor)

        found: list[dict[str, Any]] = []
        walked, next_at = 0, 0
        while next_at < len(positions) and len(found) < limit:
            if walked * cost > budget:
                return None
            if walked:
                rate = len(found) / walked
            wanted = round_size(limit - len(found), rate, walked, window_size)
            windows: list[list[str]] = []
            for at in range(next_at, min(next_at + wanted, len(positions)), read_size):
                window = positions[at : min(at + read_size, next_at + wanted)]
                windows.append([keys[position][1] for position in window])
            next_at += sum(len(window) for window in windows)
            walked += sum(len(window) for window in windows)
            # taken in list order as they come: once the page is full, reads not yet sent
            # are not sent
            reads = [asyncio.create_task(read(window)) for window in windows]
            try:
                for numbers, reading in zip(windows, reads, strict=True):
                    by_number = await reading
                    for order_no in numbers:
                        document = by_number.get(order_no)
                        if document is not None and matches(which, document):
                            found.append(document)
                            if len(found) == limit:
                                page_full.set()
                                await asyncio.gather(*reads)
                                return found
            finally:
                await cancel_and_wait(read for read in reads if not read.done())
        return found

    async def _candidates(self, numbers: list[str], anchor: list[str]) -> dict[str, dict[str, Any]]:
        """The listed orders among ``numbers`` that carry one of the ``anchor`` tags (all of
        them with no anchor). Orders stored without ``tag_keys`` are read by number."""
        if not anchor:
            return await self._listed_by(numbers, "order_no", numbers)
        without = self._timeline.without_tag_keys
        keyed = [tag_key(tag, n) for n in numbers if n not in without for tag in anchor]
        found = await self._listed_by(numbers, "tag_keys", keyed) if keyed else {}
        if without and (unkeyed := [n for n in numbers if n in without]):
            found.update(await self._listed_by(unkeyed, "order_no", unkeyed))
        return found

    async def _listed_by(
        self, numbers: list[str], field: str, values: list[str]
    ) -> dict[str, dict[str, Any]]:
        cursor = self._orders.find({field: {"$in": values}}, LISTED_FIELDS)
        return {d["order_no"]: d async for d in cursor}

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

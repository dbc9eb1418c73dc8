"""The order list's path on the local MongoDB-wire server: a creation timeline of every order,
walked in list order, its candidates read by unique key and filtered here. Why and how fast:
``docs/console.md`` (speed of the order list)."""

import asyncio
import bisect
import math
import time
from collections import Counter
from datetime import datetime
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection

from services.tagger.queries import LISTED_FIELDS, OrderFilter, SortKey, tag_key
from shared.money import to_cents
from shared.tasks import cancel_and_wait

log = structlog.get_logger("creation_timeline")

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

    async def walk(
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
        keys, anchor = self.keys, self.anchor(which)
        positions = self.span(which, sort, after)
        window_size = KEYED_WINDOW // len(anchor) if anchor else WINDOW
        cost = len(anchor) / KEY_LOOKUPS_PER_READ if anchor else 1.0
        carried = sum(self.tag_counts[tag] for tag in anchor)
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
        without = self.without_tag_keys
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

"""Use cases of changing rules safely: the diff of a candidate rule set against stored orders,
and shadow mode (a candidate evaluated beside the active rules on live traffic).

Neither writes an order or a tag: the diff writes nothing at all, shadow mode only its tally.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger import metrics
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import RuleBook
from services.tagger.rules.diff import OrderDiff, ReplayOrder, RuleDiff
from services.tagger.rules.facts import FiguresSnapshot, stored_order_facts, stored_time
from services.tagger.rules.schema import RuleFileError, RuleSet
from shared.events import AppliedTag
from shared.models import OrderStatus
from shared.stored_order import figures_record, order_as_ingested
from shared.stored_tags import stored_tags_of, tag_of

log = structlog.get_logger("tagger.rules")

# What a replay reads of a stored order (ReplayDecoder, and order_no for a job's checkpoint). An
# inclusion projection: on the local mongo-java-server it reads 10,000 orders 2.3x as fast as
# the exclusion {"_id": 0} (13,900 vs 6,000 orders/s, 3 rounds, median), and it spares the
# client decoding applied_events (tag_names is read: the tags' names). The order and the tags whole:
# projecting into them (STORED_ORDER_FIELDS, "tags.name", ...) took 33% off the client's CPU
# but tripled the local server's (0.33 -> 1.0 s per 10,000 orders), more in all
REPLAY_FIELDS = {
    "_id": 0,
    "order_no": 1,
    "customer_id": 1,  # with order_no and created_at, the stored order's own (stored_order.py)
    "created_at": 1,
    "order": 1,
    "status": 1,
    "tags": 1,
    "tag_names": 1,
    "tags_at": 1,
    "tags_rule_version": 1,
    "figures": 1,
}
# Orders per read: 2,500 replayed 10,000 orders end to end 1.26x as fast as 1,000 (2,823 vs
# 2,247 orders/s, 3 alternating rounds, median), fewer round trips; a diff job checkpoints
# once per batch
REPLAY_BATCH = 2_500


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """Which stored orders a diff replays: created since ``since`` (None: all), optionally only
    of one status, region or customer."""

    since: datetime | None = None
    status: OrderStatus | None = None
    region: str | None = None
    customer_id: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "status": None if self.status is None else self.status.value,
            "region": self.region,
            "customer_id": self.customer_id,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "ReplayWindow":
        status = document.get("status")
        return cls(
            since=document.get("since"),
            status=None if status is None else OrderStatus(status),
            region=document.get("region"),
            customer_id=document.get("customer_id"),
        )

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.since is not None:
            query["created_at"] = {"$gte": self.since}
        if self.status is not None:
            query["status"] = self.status.value
        if self.region is not None:
            query["region"] = self.region
        if self.customer_id is not None:
            query["customer_id"] = self.customer_id
        return query


class UnreadableOrder(ValueError):
    """A stored order document lacks what every order the tagger stores has."""


class ReplayDecoder:
    """Stored order documents into ``ReplayOrder``s, as fast as a replay needs.

    A stored order was validated when it was written: its facts are read straight from the
    document (``stored_order_facts``) rather than through a new ``Order`` (which took 40% of a
    replay's time). A stored tag was validated too, and a comparison reads only its name,
    family, source, rule and rule version: tags equal in those are decoded once and shared
    (their time is that of the first order seen)."""

    def __init__(self) -> None:
        self._tags: dict[tuple[Any, ...], AppliedTag] = {}

    def __call__(self, document: dict[str, Any]) -> ReplayOrder:
        status = OrderStatus(document["status"])
        tags = [self._tag(tag, document.get("tags_at")) for tag in stored_tags_of(document)]
        figures = FiguresSnapshot.from_record(figures_record(document["figures"]))
        try:
            order = order_as_ingested(document)
            facts = stored_order_facts(order, figures, status)
            created_at = stored_time(order["created_at"])
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            raise UnreadableOrder(
                f"stored order {document.get('order_no')!r} does not read as an order "
                f"({type(error).__name__}: {error}); it was not written by the tagger"
            ) from error
        return ReplayOrder(
            order["order_no"], order["customer"]["id"], created_at, status, tags, facts
        )

    def _tag(self, stored: dict[str, Any], tags_at: Any) -> AppliedTag:
        key = (
            stored["name"],
            stored.get("family"),
            stored.get("source"),
            stored.get("rule_id"),
            stored.get("rule_version"),
            stored.get("by"),
        )
        tag = self._tags.get(key)
        if tag is None:
            # compact or full (shared/stored_tags.py); the reason is not compared
            tag = self._tags[key] = tag_of(stored, None, tags_at)
        return tag


class StoredOrders:
    """The stored orders a replay reads, in batches of ``REPLAY_BATCH``."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.orders = database["orders"]

    async def count(self, window: ReplayWindow) -> int:
        return await self.orders.count_documents(window.query())

    async def batches(
        self, window: ReplayWindow, after: str = ""
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Batches of whole order documents, by order number from just ``after`` it (a
        resumed diff job goes on where it stopped); the next batch is read while the caller
        works on this one, so the server's time overlaps the evaluation's.

        In the unique order-number index's order (measured no slower than unsorted on the
        local server), only the fields a replay reads."""
        query = window.query()
        if after:
            query["order_no"] = {"$gt": after}
        cursor = self.orders.find(query, REPLAY_FIELDS, batch_size=REPLAY_BATCH).sort(
            "order_no", ASCENDING
        )
        ahead = asyncio.ensure_future(cursor.to_list(REPLAY_BATCH))
        try:
            while batch := await ahead:
                ahead = asyncio.ensure_future(cursor.to_list(REPLAY_BATCH))
                yield batch
        finally:
            ahead.cancel()
            await cursor.close()


async def diff_against_history(
    orders: StoredOrders,
    active: RuleSet,
    candidate: RuleSet,
    *,
    window: ReplayWindow,
    max_tags: int,
    only_tags: frozenset[str] | None = None,
    on_changed: Callable[[list[OrderDiff]], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RuleDiff:
    """Replay the stored orders of ``window`` through both rule sets (each order with the
    figures stored on it, as they were when it was tagged) and tally what would change.
    ``on_changed`` receives each batch's changed orders (the CSV), ``on_progress`` the number
    of orders compared so far. Reads only."""
    tally = RuleDiff(only_tags=only_tags)
    decode = ReplayDecoder()

    def compare(batch: list[dict[str, Any]]) -> list[OrderDiff]:
        return tally.compare(active, candidate, map(decode, batch), max_tags)

    async for batch in orders.batches(window):
        # in a thread: the event loop meanwhile reads the next batch from MongoDB
        changed = await asyncio.to_thread(compare, batch)
        if on_changed is not None and changed:
            on_changed(changed)
        if on_progress is not None:
            on_progress(tally.orders_compared)
    return tally


class ShadowRules:
    """A candidate rule set run beside the active one on the orders each batch just tagged:
    evaluated, compared and counted, never written to an order.

    The consumer calls ``observe`` once per batch; ``refresh`` (the rule watcher) follows the
    shadow setting in MongoDB, so starting or stopping a shadow needs no restart."""

    def __init__(
        self,
        book: RuleBook,
        versions: RuleVersions,
        database: AsyncDatabase[dict[str, Any]],
        *,
        max_tags: int,
    ) -> None:
        self._book = book
        self._versions = versions
        self._orders = database["orders"]
        self._max_tags = max_tags
        self.version: str | None = None
        self.candidate: RuleSet | None = None

    async def refresh(self) -> None:
        version = await self._versions.shadow_version()
        if version == self.version:
            return
        candidate = None
        if version is not None:
            stored = await self._versions.get(version)
            try:
                candidate = stored.rule_set() if stored is not None else None
            except RuleFileError as error:
                log.error("shadow_rules_invalid", version=version, error=str(error))
        self.version, self.candidate = (version, candidate) if candidate else (None, None)
        log.info("shadow_rules", version=self.version)

    async def observe(self, order_nos: list[str]) -> RuleDiff | None:
        """Compare the candidate with the active rules on these (just stored) orders and add
        the differences to the tally; None when no candidate runs."""
        version, candidate = self.version, self.candidate
        if version is None or candidate is None or not order_nos:
            return None
        documents = await self._orders.find(
            {"order_no": {"$in": sorted(set(order_nos))}}, REPLAY_FIELDS
        ).to_list(None)
        tally = RuleDiff()
        replayed = map(ReplayDecoder(), documents)
        tally.compare(self._book.current, candidate, replayed, self._max_tags)
        for (_, tag, change), count in tally.by_rule.items():
            metrics.SHADOW_DIFFERENCES.labels(tag, change.value).inc(count)
        await self._versions.count_shadow(version, tally)
        return tally

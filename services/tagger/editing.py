"""The manual tagging use case: a person adds or removes tags on orders.

Writes go through the same versioned store as the rules (a concurrent rule write and a manual
write never overwrite each other), are recorded in the tag history with who did them, and
publish tagged-order events, so the notifier sees a manual "urgent" like a rule's.

A stored change whose event was not published yet is a pending publication (written before the
change, removed once Kafka acknowledged the event): a retry of the request, any later change of
the same orders and the periodic sweep publish it, so no manual change goes unalerted because
Kafka failed at the wrong moment.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from pymongo import UpdateOne

from services.tagger.governance import (
    ALWAYS_ALLOWED,
    Refusal,
    removal_refusal,
    removal_refusals,
)
from services.tagger.manual import (
    ManualChange,
    RemovalForbidden,
    TagChangeRefused,
    apply_manual,
    check_tags,
)
from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.outcomes import EditOutcome, EditResult
from services.tagger.rule_tags import fact_prefixes
from services.tagger.rules.book import RuleBook
from services.tagger.rules.schema import CatalogTag, Family
from services.tagger.store import OrderStore
from services.tagger.tagging import stored_changes_tagged, tagged_event_for, until_no_conflicts
from shared.events import OrderTagged

log = structlog.get_logger("tagger.editing")

Publish = Callable[[list[OrderTagged]], Awaitable[None]]
EDIT_NAMESPACE = uuid.UUID("2d6f3c0a-8b7e-4f51-9a0e-5c1d2b3a4f60")
PENDING_PUBLICATIONS = "pending_publications"
# A pending publication whose change is not stored after this long was never stored (its save
# failed or lost every race): dropped, the client was told the change failed.
NEVER_STORED_AFTER = timedelta(minutes=5)


def edit_event_id(operation: str, order_no: str) -> uuid.UUID:
    """The id of one operation's change to one order: applying it again is a no-op."""
    return uuid.uuid5(EDIT_NAMESPACE, f"{operation}:{order_no}")


class TagEditing:
    def __init__(
        self,
        store: OrderStore,
        rules: RuleBook,
        publish: Publish,
        *,
        max_tags: int,
        allow_free_tags: bool,
    ) -> None:
        self._store = store
        self._rules = rules
        self._publish = publish
        self._max_tags = max_tags
        self._allow_free_tags = allow_free_tags
        self._pending = store.orders.database[PENDING_PUBLICATIONS]

    async def check(self, change: ManualChange) -> None:
        self._check(change.add, await self._store.catalog())

    async def removal_refusals(self, order_nos: list[str], change: ManualChange) -> list[Refusal]:
        """Each tag the change's role may not remove from these orders, judged under the family
        each order's tag carries (``governance.removal_refusals``)."""
        if not change.remove or change.role in (None, ALWAYS_ALLOWED):
            return []
        records = await self._store.load(list(dict.fromkeys(order_nos)))
        return removal_refusals(
            (record.tags for record in records.values()),
            change.remove,
            change.role,
            await self._store.catalog(),
            self._families(),
        )

    def _check(self, names: tuple[str, ...], catalog: dict[str, CatalogTag]) -> None:
        """Catalog tags, else free ones where allowed, outside the rules' fact prefixes."""
        check_tags(names, catalog, self._allow_free_tags, fact_prefixes(self._rules.current))

    def _families(self) -> dict[str, Family]:
        return {family.name: family for family in self._rules.current.families}

    async def change(
        self, order_nos: list[str], change: ManualChange, operation: str
    ) -> dict[str, EditResult]:
        """Apply ``change`` to each order once per ``operation`` (resending an operation is
        safe: it answers what the first attempt did and publishes what that one could not)."""
        catalog = await self._store.catalog()
        self._check(change.add, catalog)
        order_nos = list(dict.fromkeys(order_nos))
        await self.publish_pending(order_nos)
        results: dict[str, EditResult] = {}
        attempt = partial(self._attempt, change=change, operation=operation, results=results)
        await until_no_conflicts(order_nos, lambda order_no: order_no, attempt)
        return results

    async def _attempt(
        self,
        order_nos: list[str],
        *,
        change: ManualChange,
        operation: str,
        results: dict[str, EditResult],
    ) -> set[str]:
        catalog = await self._store.catalog()
        exclusive = self._rules.current.exclusive_families
        refuse_removal = removal_refusal(change.role, catalog, self._families())
        records = await self._store.load(order_nos)
        now = datetime.now(UTC)
        changed: list[OrderRecord] = []
        history: list[HistoryEntry] = []
        tagged: list[OrderTagged] = []
        for order_no in order_nos:
            record = records.get(order_no)
            event_id = edit_event_id(operation, order_no)
            if record is None:
                results[order_no] = EditResult(EditOutcome.NOT_FOUND)
                continue
            if str(event_id) in record.applied_events:  # this operation, sent again
                results[order_no] = EditResult(EditOutcome.CHANGED)
                continue
            try:
                result = apply_manual(
                    record.tags,
                    change,
                    catalog=catalog,
                    exclusive_families=exclusive,
                    max_tags=self._max_tags,
                    at=now,
                    refuse_removal=refuse_removal,
                )
            except RemovalForbidden as error:
                results[order_no] = EditResult(EditOutcome.FORBIDDEN, str(error))
                continue
            except TagChangeRefused as error:
                results[order_no] = EditResult(EditOutcome.REFUSED, str(error))
                continue
            if not result.added and not result.removed:
                results[order_no] = EditResult(EditOutcome.UNCHANGED)
                continue
            new = replace(
                record, tags=result.tags, applied_events=[*record.applied_events, str(event_id)]
            )
            changed.append(new)
            history.append(
                HistoryEntry(
                    order_no, str(event_id), now, result.added, result.removed, by=change.by
                )
            )
            tagged.append(
                tagged_event_for(
                    event_id,
                    now,
                    new,
                    result.added,
                    [t.name for t in result.removed],
                    self._rules.current.customer_tiers,
                )
            )
            results[order_no] = EditResult(EditOutcome.CHANGED)
        await self._intend(tagged)
        conflicts = await self._store.save(changed, history)
        await self._publish_and_settle([t for t in tagged if t.order_no not in conflicts])
        return conflicts

    async def _intend(self, tagged: list[OrderTagged]) -> None:
        """Record the publications before their changes are stored: a change is never stored
        without its pending publication."""
        if tagged:
            await self._pending.bulk_write(
                [
                    UpdateOne(
                        {"source_event_id": str(t.source_event_id)},
                        {"$set": {"order_no": t.order_no, "at": t.occurred_at}},
                        upsert=True,
                    )
                    for t in tagged
                ],
                ordered=False,
            )

    async def _publish_and_settle(self, tagged: list[OrderTagged]) -> None:
        if tagged:
            await self._publish(tagged)  # raises when Kafka refused: the entries stay pending
            await self._pending.delete_many(
                {"source_event_id": {"$in": [str(t.source_event_id) for t in tagged]}}
            )

    async def publish_pending(
        self, order_nos: list[str] | None = None, older_than: timedelta = timedelta(0)
    ) -> int:
        """Publish the stored changes still waiting for their event (of ``order_nos``, or all
        those older than ``older_than``); returns how many were published."""
        query: dict[str, Any] = {"at": {"$lte": datetime.now(UTC) - older_than}}
        if order_nos is not None:
            query["order_no"] = {"$in": order_nos}
        entries = await self._pending.find(query, {"_id": 0}).to_list(None)
        if not entries:
            return 0
        records = await self._store.load(sorted({e["order_no"] for e in entries}))
        stored: list[tuple[str, uuid.UUID, datetime]] = []
        never_stored: list[str] = []
        for entry in entries:
            record = records.get(entry["order_no"])
            if record is not None and entry["source_event_id"] in record.applied_events:
                stored.append((entry["order_no"], uuid.UUID(entry["source_event_id"]), entry["at"]))
            elif entry["at"] < datetime.now(UTC) - NEVER_STORED_AFTER:
                never_stored.append(entry["source_event_id"])
        tiers = self._rules.current.customer_tiers
        await self._publish_and_settle(
            await stored_changes_tagged(self._store, stored, records, tiers=tiers)
        )
        if never_stored:  # with the history written ahead of a change that never landed
            await self._store.tag_history.delete_many({"event_id": {"$in": never_stored}})
            await self._pending.delete_many({"source_event_id": {"$in": never_stored}})
        if stored:
            log.warning("pending_publications_published", count=len(stored))
        return len(stored)

    async def sweep(self, every_s: float = 10.0, older_than_s: float = 30.0) -> None:
        """Publish forgotten changes (their request failed after storing them and was never
        retried). Run as a background task of the process that edits tags."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.publish_pending(older_than=timedelta(seconds=older_than_s))
            except Exception:  # a dependency down: the next round tries again
                log.exception("pending_publications_sweep_failed")


__all__ = ["EditOutcome", "EditResult", "TagChangeRefused", "TagEditing", "edit_event_id"]

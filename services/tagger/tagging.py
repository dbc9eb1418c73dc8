"""The tagging use case: a batch of order events in, tags stored, tagged-order events out.

Effects are idempotent under redelivery: figures through the per-order Lua script, the order
document through the event ids it records and its version, history through a unique index.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import structlog

from services.tagger import metrics
from services.tagger.figure_keys import Apply, Reverse
from services.tagger.figures import CustomerFigures, FiguresLost
from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.rules.book import RuleBook
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.regions import region_of
from services.tagger.store import OrderStore
from shared.events import (
    AppliedTag,
    EventType,
    OrderCreated,
    OrderFacts,
    OrderTagged,
    OrderUpdated,
    StatusChanged,
    TagSource,
    built,
    to_millisecond,
)
from shared.models import OrderStatus
from shared.stored_history import readable_history
from shared.tasks import cancel_and_wait

log = structlog.get_logger("tagger")

OrderEventModel = OrderCreated | OrderUpdated | StatusChanged
TAGGED_EVENT_NAMESPACE = uuid.UUID("6f1c1d9e-3f7a-4d59-9a43-0e0b6b1f2c11")
REVERSING_STATUSES = {OrderStatus.CANCELLED, OrderStatus.RETURNED}
MAX_WRITE_ATTEMPTS = 5
MAX_EVENT_TAGS = 200  # ``OrderTagged``'s limit on each of its tag lists
T = TypeVar("T")


class WriteConflictsPersist(Exception):
    """Orders kept changing under the tagger; the batch is retried from Kafka."""


@dataclass
class BatchOutcome:
    tagged: list[OrderTagged] = field(default_factory=list)
    # status changes refused (dead letters): for an order never seen, or naming another
    # customer than the order's
    unknown_orders: list["Refusal"] = field(default_factory=list)
    # creations of an order already created, not applied (``_split_fresh``), by event id
    created_again: dict[str, OrderCreated] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    event: StatusChanged
    reason: str


async def until_no_conflicts(
    items: list[T],
    order_no_of: Callable[[T], str],
    attempt: Callable[[list[T]], Awaitable[set[str]]],
) -> None:
    """Run ``attempt`` (read, decide, save; it answers the orders whose write lost a race) on
    the items, then again on the items of those orders, until no write loses."""
    pending = items
    for _ in range(MAX_WRITE_ATTEMPTS):
        conflicts = await attempt(pending)
        if not conflicts:
            return
        metrics.WRITE_CONFLICTS.inc(len(conflicts))
        pending = [item for item in pending if order_no_of(item) in conflicts]
    raise WriteConflictsPersist(f"orders still conflicting: {sorted(conflicts)[:10]}")


def tagged_event_id(source_event_id: uuid.UUID) -> uuid.UUID:
    """Deterministic: a replayed event republishes the same tagged event id, which consumers
    can dedupe on."""
    return uuid.uuid5(TAGGED_EVENT_NAMESPACE, str(source_event_id))


class TaggingService:
    def __init__(
        self,
        rules: RuleBook,
        figures: CustomerFigures,
        store: OrderStore,
        *,
        max_tags: int,
        lanes: int = 4,
    ) -> None:
        self._lanes = lanes
        self._rules = rules
        self._figures = figures
        self._store = store
        self._max_tags = max_tags
        self._hits: Counter[tuple[str, str]] = Counter()

    async def tag(self, events: Sequence[OrderEventModel]) -> BatchOutcome:
        """Tag a batch in independent lanes, each holding whole customers (in event order), so
        one lane's rule work runs while another lane waits on MongoDB or Redis."""
        lanes = [
            asyncio.create_task(self._tag_lane(lane))
            for lane in _lanes_by_customer(events, self._lanes)
        ]
        try:
            outcomes = await asyncio.gather(*lanes)
        except BaseException:
            # Stop the other lanes before the batch is retried or redelivered, so no lane of
            # this attempt still writes while the next attempt runs; the first error is
            # raised as is (the retry policy matches on its type).
            await cancel_and_wait(lanes)
            raise
        merged = BatchOutcome()
        for outcome in outcomes:
            merged.tagged.extend(outcome.tagged)
            merged.unknown_orders.extend(outcome.unknown_orders)
            merged.created_again.update(outcome.created_again)
        if merged.created_again:
            again = merged.created_again.values()
            log.info("order_created_again", orders=sorted({e.order_no for e in again}))
            metrics.EVENTS_PROCESSED.labels("created_again").inc(len(again))
        return merged

    async def _tag_lane(self, events: list[OrderEventModel]) -> BatchOutcome:
        outcome = BatchOutcome()
        await until_no_conflicts(
            events, lambda event: event.order_no, partial(self._attempt, outcome=outcome)
        )
        return outcome

    async def _attempt(self, events: list[OrderEventModel], *, outcome: BatchOutcome) -> set[str]:
        # a retry (its order's write lost a race) keeps the refusals made before: a status
        # change dead-lettered for an order not yet stored is not applied once the winner is
        refused_before = {refusal.event.event_id for refusal in outcome.unknown_orders}
        events = [event for event in events if event.event_id not in refused_before]
        records = await self._store.load(sorted({event.order_no for event in events}))
        fresh, replays, created_again = _split_fresh(events, records)
        outcome.created_again.update((str(e.event_id), e) for e in created_again)
        refused = {r.event.event_id: r for r in _refused_status_changes(fresh, records)}
        fresh = [event for event in fresh if event.event_id not in refused]
        outcome.unknown_orders.extend(refused.values())
        snapshots, epoch = await self._apply_figures(fresh)

        changed: dict[str, OrderRecord] = {}
        history: list[HistoryEntry] = []
        tagged: list[OrderTagged] = []
        for event in fresh:
            record = changed.get(event.order_no) or records.get(event.order_no)
            if isinstance(event, StatusChanged) and (
                refusal := _refusal(event, record.order.customer.id if record else None)
            ):
                outcome.unknown_orders.append(refusal)
                continue
            record, event_tagged, event_history = self._apply(event, record, snapshots)
            changed[event.order_no] = record
            tagged.append(event_tagged)
            history.extend(event_history)

        self._count_hits()
        conflicts = await self._store.save(list(changed.values()), history)
        while epoch is not None and await self._figures.epoch() != epoch:
            # The figures were rebuilt while these orders were being stored: the rebuild may
            # have read MongoDB before them. Counting them again adds only what it missed.
            log.warning("figures_rebuilt_under_batch", orders=len(fresh))
            _, epoch = await self._apply_figures(fresh)
        # replays first: an order's stored events came before its fresh ones, and consumers
        # that follow the order's state (the notifier) must see them in that order
        outcome.tagged.extend(await self._replayed(replays, records))
        outcome.tagged.extend(t for t in tagged if t.order_no not in conflicts)
        metrics.EVENTS_PROCESSED.labels("tagged").inc(len(tagged))
        metrics.EVENTS_PROCESSED.labels("replayed").inc(len(replays))
        return conflicts

    def _count_hits(self) -> None:
        """Prometheus counters once per batch and label (``labels()`` is slow per decision)."""
        for (rule_id, tag), hits in self._hits.items():
            metrics.RULE_HITS.labels(rule_id).inc(hits)
            metrics.TAG_HITS.labels(tag).inc(hits)
        self._hits.clear()

    async def _apply_figures(
        self, events: list[OrderEventModel]
    ) -> tuple[dict[str, FiguresSnapshot], str | None]:
        """Each fresh order's figures before it, and the figures' epoch they were counted in.
        Figures Redis has lost are rebuilt from MongoDB first, never counted from zero."""
        operations: list[Apply | Reverse] = []
        for event in events:
            if isinstance(event, StatusChanged):
                if event.status in REVERSING_STATUSES:
                    operations.append(Reverse(event.customer_id, event.order_no))
                continue
            order = event.order
            operations.append(Apply.of_order(order))
            if order.status in REVERSING_STATUSES:
                operations.append(Reverse(order.customer.id, order.order_no))
        if not operations:
            return {}, None
        while True:
            try:
                epoch, results = await self._figures.apply_in_epoch(operations)
                break
            except FiguresLost as lost:
                log.warning("figures_lost", reason=lost.reason)
                await self._figures.ensure_loaded(self._store.all_orders, lost.reason)
        snapshots = {
            op.order_no: result
            for op, result in zip(operations, results, strict=True)
            if isinstance(result, FiguresSnapshot)
        }
        return snapshots, epoch

    def _apply(
        self,
        event: OrderEventModel,
        record: OrderRecord | None,
        snapshots: dict[str, FiguresSnapshot],
    ) -> tuple[OrderRecord, OrderTagged, list[HistoryEntry]]:
        rules = self._rules.current
        if isinstance(event, StatusChanged):
            assert record is not None
            order = record.order.model_copy(update={"status": event.status})
            figures = record.figures
        else:
            order = event.order
            figures = snapshots[order.order_no]
        status = order.status
        facts = order_facts(order, figures, status)
        decisions = decide(rules, facts)
        change = merge_tags(
            record.tags if record else [],
            decisions,
            exclusive_families=rules.exclusive_families,
            max_tags=self._max_tags,
            at=event.occurred_at,
        )
        self._hits.update((d.rule_id, d.tag) for d in decisions)
        for dropped in change.dropped_by_limit:
            metrics.TAGS_DROPPED_BY_LIMIT.labels(dropped.rule_id).inc()
            log.warning(
                "tag_dropped_by_limit",
                order_no=order.order_no,
                tag=dropped.tag,
                rule_id=dropped.rule_id,
                max_tags=self._max_tags,
            )

        event_id = str(event.event_id)
        new_record = OrderRecord(
            order=order,
            status=status,
            tags=change.tags,
            figures=figures,
            contribution_reversed=(record.contribution_reversed if record else False)
            or status in REVERSING_STATUSES,
            applied_events=[*(record.applied_events if record else []), event_id],
            version=record.version if record else 0,
            stored=record.stored if record else None,
            first_at=record.first_at if record else to_millisecond(event.occurred_at),
            facts=facts,
        )
        history = []
        replaced = replaced_tags(record.tags if record else [], change.tags)
        if change.added or change.removed or replaced:
            history.append(
                HistoryEntry(
                    order.order_no,
                    event_id,
                    event.occurred_at,
                    change.added,
                    change.removed,
                    replaced=replaced,
                )
            )
        tagged = tagged_event_for(
            event.event_id,
            event.occurred_at,
            new_record,
            change.added,
            [t.name for t in change.removed],
            rules.customer_tiers,
        )
        return new_record, tagged, history

    async def _replayed(
        self, replays: list[OrderEventModel], records: dict[str, OrderRecord]
    ) -> list[OrderTagged]:
        """Events already stored: publish their tagged event again (the first publish may have
        been lost in a crash); same id, same content, so downstream dedupes it."""
        stored = [(event.order_no, event.event_id, event.occurred_at) for event in replays]
        return await stored_changes_tagged(
            self._store,
            stored,
            records,
            templates=self._store.templates(),
            sources={str(event.event_id): event for event in replays},
            tiers=self._rules.current.customer_tiers,
        )


async def stored_changes_tagged(
    store: OrderStore,
    changes: Sequence[tuple[str, uuid.UUID, datetime]],
    records: dict[str, OrderRecord],
    *,
    tiers: Sequence[str],
    templates: ReasonTemplates | None = None,
    sources: Mapping[str, OrderEventModel] | None = None,
) -> list[OrderTagged]:
    """The tagged events of changes already stored (order number, source event id, when),
    rebuilt from their tag history, to publish again: by rules on replay, by hand from the
    pending publications. With the change's source event (``sources``, by event id: a
    replay), the order is published as it was right after it, its status and tags then, as
    first published: a later change stored before a crash (the order shipped) must not
    stand in for it, or an alert due on the earlier state is never raised."""
    if not changes:
        return []
    entries_of: dict[str, list[dict[str, Any]]] = {}
    changed = {order_no: records[order_no] for order_no, _, _ in changes}
    for entry in await store.history_of_orders(changed):
        entries_of.setdefault(entry["order_no"], []).append(entry)
    history_of = {
        order_no: readable_history(entries, records[order_no].tags, templates)
        for order_no, entries in entries_of.items()
    }
    by_event = {
        (order_no, entry["event_id"]): entry
        for order_no, history in history_of.items()
        for entry in history
    }
    tagged = []
    for order_no, source_event_id, occurred_at in changes:
        record = records[order_no]
        entry = by_event.get((order_no, str(source_event_id)), {})
        source = (sources or {}).get(str(source_event_id))
        if source is not None:
            record = _as_after(record, source, history_of.get(order_no, []))
        # what the change added, as the history kept it: the order's current tags may no
        # longer hold it (a later change of the same order, stored before the crash, removed
        # an urgent tag), and the alert it calls for is due all the same
        current = {tag.name: tag for tag in record.tags}
        added = [
            current.get(tag["tag"]) or _tag_from_history(tag, entry["at"])
            for tag in entry.get("added", [])
        ]
        removed = sorted(t["tag"] for t in entry.get("removed", []))
        tagged.append(tagged_event_for(source_event_id, occurred_at, record, added, removed, tiers))
    return tagged


def _as_after(
    record: OrderRecord, source: OrderEventModel, history: list[dict[str, Any]]
) -> OrderRecord:
    """The order right after ``source`` was applied: the event's own status (and order, for a
    creation or update), and its tags with every later change of the history undone."""
    applied = record.applied_events
    event_id = str(source.event_id)

    def later(entry: dict[str, Any]) -> bool:
        if event_id in applied and entry["event_id"] in applied:
            return applied.index(entry["event_id"]) > applied.index(event_id)
        return bool(entry["at"] > source.occurred_at)

    tags = {tag.name: tag for tag in record.tags}
    for entry in reversed([entry for entry in history if later(entry)]):
        for added in entry.get("added", ()):
            tags.pop(added["tag"], None)
        for before in (*entry.get("removed", ()), *entry.get("replaced", ())):
            tags[before["tag"]] = _tag_from_history(before, entry["at"])
    if isinstance(source, StatusChanged):
        order = record.order.model_copy(update={"status": source.status})
    else:
        order = source.order
    return replace(record, order=order, status=order.status, tags=list(tags.values()), facts=None)


def replaced_tags(before: list[AppliedTag], after: list[AppliedTag]) -> list[AppliedTag]:
    """Tags an order keeps by name whose rule or rule version changed: as they were."""
    now = {tag.name: (tag.rule_id, tag.rule_version, tag.source) for tag in after}
    return [
        tag
        for tag in before
        if tag.name in now and now[tag.name] != (tag.rule_id, tag.rule_version, tag.source)
    ]


def _lanes_by_customer(
    events: Sequence[OrderEventModel], lanes: int
) -> list[list[OrderEventModel]]:
    """Split events into at most ``lanes`` lists; all of one customer's events (and so all of
    each order's, and everything its figures depend on) stay in one list, in their order."""
    lane_of: dict[str, int] = {}
    split: list[list[OrderEventModel]] = [[] for _ in range(lanes)]
    for event in events:
        lane = lane_of.setdefault(event.customer_id, len(lane_of) % lanes)
        split[lane].append(event)
    return [lane for lane in split if lane]


def _refusal(event: StatusChanged, order_customer_id: str | None) -> Refusal | None:
    """Why a status change must not be applied, if it must not: the order is unknown, or the
    event names another customer than the order's (it would move the wrong figures)."""
    if order_customer_id is None:
        return Refusal(event, f"status change for unknown order {event.order_no}")
    if event.customer_id != order_customer_id:
        return Refusal(
            event,
            f"status change for order {event.order_no} names customer {event.customer_id}, "
            f"but the order is customer {order_customer_id}'s",
        )
    return None


def _refused_status_changes(
    events: list[OrderEventModel], records: dict[str, OrderRecord]
) -> list[Refusal]:
    """Status changes of stored orders that name another customer: refused before they count."""
    refusals = (
        _refusal(event, record.order.customer.id)
        for event in events
        if isinstance(event, StatusChanged) and (record := records.get(event.order_no))
    )
    return [refusal for refusal in refusals if refusal is not None]


def _split_fresh(
    events: list[OrderEventModel], records: dict[str, OrderRecord]
) -> tuple[list[OrderEventModel], list[OrderEventModel], list[OrderCreated]]:
    """The events to apply, those applied already (their tagged events are sent again) and
    creations of an order already created: ingest answers the same order sent twice as a
    duplicate only while it keeps its claim (``ORDERTAG_INGEST_IDEMPOTENCY_RETENTION_S``), or
    Redis lost it. Such a creation is not applied, its figures not counted: a shop's stale
    copy must not take a cancelled order back to pending (a change comes as ``PUT
    /orders/{order_no}``, an ``order.updated``)."""
    fresh: list[OrderEventModel] = []
    replays: list[OrderEventModel] = []
    created_again: list[OrderCreated] = []
    seen: set[str] = set()
    created = set(records)
    for event in events:
        event_id = str(event.event_id)
        if event_id in seen:
            continue
        seen.add(event_id)
        record = records.get(event.order_no)
        if record is not None and event_id in record.applied_events:
            replays.append(event)
        elif event.event_type is EventType.ORDER_CREATED and event.order_no in created:
            assert isinstance(event, OrderCreated)
            created_again.append(event)
        else:
            if not isinstance(event, StatusChanged):  # a creation, or an update that creates
                created.add(event.order_no)
            fresh.append(event)
    return fresh, replays, created_again


def _tag_from_history(tag: dict[str, Any], at: datetime) -> AppliedTag:
    """A tag of a history entry in full (``readable_history``) as an ``AppliedTag``."""
    return AppliedTag(
        name=tag["tag"],
        family=tag["family"],
        source=TagSource(tag["source"]),
        rule_id=tag["rule_id"],
        rule_version=tag["rule_version"],
        by=tag["by"],
        reason=tag["reason"],
        at=at,
    )


def tagged_event_for(
    source_event_id: uuid.UUID,
    occurred_at: datetime,
    record: OrderRecord,
    added: list[AppliedTag],
    removed: list[str],
    tiers: Sequence[str],
) -> OrderTagged:
    """The tagged-order event for one change of a stored order (by rules or by hand);
    ``tiers``: the rule set's customer tiers, highest first (``RuleSet.customer_tiers``).
    Built from parts already valid (the stored or decided tags, the validated order), not
    validated again: one per order, its validation was a tenth of the tagger's CPU."""
    names = {tag.name for tag in record.tags}
    order = record.order
    tags = [*record.tags, *(tag for tag in added if tag.name not in names)]
    if max(len(tags), len(added), len(removed)) > MAX_EVENT_TAGS:
        raise ValueError(f"order {order.order_no}: more than {MAX_EVENT_TAGS} tags in one event")
    facts = built(
        OrderFacts,
        {
            "status": record.status,
            "total": order.pricing.total,
            "currency": order.pricing.currency,
            "customer_tier": next((tier for tier in tiers if tier in names), None),
            "shipping_method": order.shipping.method.value,
            "region": region_of(order.shipping.province),
        },
    )
    return built(
        OrderTagged,
        {
            "event_id": tagged_event_id(source_event_id),
            "occurred_at": occurred_at,
            "schema_version": 1,
            "event_type": "order.tagged",
            "source_event_id": source_event_id,
            "order_no": order.order_no,
            "customer_id": order.customer.id,
            "tags_added": added,
            "tags_removed": removed,
            "tags": tags,
            "facts": facts,
        },
    )

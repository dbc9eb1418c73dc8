"""Putting a rule-set version in force: activation and rollback (the same path back), and the
backfill that re-derives the tags of stored orders under the version just put in force.

Every tagger follows ``rule_active`` (the rule watcher checks it every 2 s), so an activation
needs no restart and no file edit. The backfill is a job (``jobs.Jobs``): resumable from its
last chunk, one lease across replicas, and each order changed once per job (the job's change has
a fixed event id the order remembers). Backfilled tags alert only when the activation asks for
it, and then only tags an order did not carry before.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import structlog

from services.tagger.editing import Publish, edit_event_id
from services.tagger.errors import Conflict, Invalid, NotFound
from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.queries import OrderFilter
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import RuleBook
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import order_facts
from services.tagger.rules.schema import RuleFileError, RuleSet
from services.tagger.store import OrderStore
from services.tagger.tagging import stored_changes_tagged, tagged_event_for, until_no_conflicts
from shared.events import AppliedTag, OrderTagged

log = structlog.get_logger("tagger.rules")


def backfill_operation(job_id: str) -> str:
    """The operation name of a backfill's change to an order (its event id's seed)."""
    return f"job:{job_id}"


async def follow_active_rules(
    versions: RuleVersions, book: RuleBook, *, file_read: bool, by: str
) -> str:
    """Bring ``book`` to the version in force. ``file_read``: the book just read its file (at
    start or after an edit), which is adopted as active if it changed since the last adoption."""
    if file_read:
        wanted = await versions.adopt_file(
            book.text, book.current, by=by, comment=f"loaded from {book.path.name}"
        )
    else:
        active = await versions.active_rules()
        wanted = active.version if active is not None else book.version
    if wanted != book.version:
        stored = await versions.get(wanted)
        if stored is None:
            log.error("active_rules_missing", version=wanted)
            return book.version
        try:
            book.use(stored.content, f"rule version {wanted}")
        except RuleFileError as error:  # recorded versions were valid; a schema change may not be
            log.error("active_rules_invalid", version=wanted, error=str(error))
    return book.version


async def remember_earlier_rules(versions: RuleVersions, book: RuleBook) -> None:
    """Give ``book`` every rule set that was ever in force, whose reason templates read the
    tags their rule versions gave. Called at start and whenever the version in force changes
    (a version is in force everywhere within a watch round of its activation)."""
    recorded = tuple(await versions.active_rule_sets())
    if len(recorded) != len(book.earlier) or any(
        a is not b for a, b in zip(recorded, book.earlier, strict=True)
    ):
        book.earlier = recorded


@dataclass(frozen=True, slots=True)
class Backfill:
    """What a backfill job re-derives: orders of ``which`` under rule version ``version``."""

    version: str
    alert: bool  # publish tagged events for the tags it adds (the notifier alerts on them)

    def to_document(self) -> dict[str, Any]:
        return {"version": self.version, "alert": self.alert}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Backfill":
        return cls(version=document["version"], alert=bool(document.get("alert", False)))


def rederive(
    record: OrderRecord, rules: RuleSet, *, version: str, max_tags: int, at: datetime
) -> tuple[list[AppliedTag], list[AppliedTag], list[AppliedTag]] | None:
    """The order's tags under ``rules`` (with the figures and status stored on it), the tags
    added and removed; None when nothing changes. Manual tags stay, as in any re-tag; a rule tag
    the version gives anew cites the version in ``by``."""
    facts = order_facts(record.order, record.figures, record.status)
    change = merge_tags(
        record.tags,
        decide(rules, facts),
        exclusive_families=rules.exclusive_families,
        max_tags=max_tags,
        at=at,
    )
    if change.tags == record.tags:
        return None
    before = {id(tag) for tag in record.tags}
    cite = f"ruleset:{version}"
    tags = [
        tag if id(tag) in before else tag.model_copy(update={"by": cite}) for tag in change.tags
    ]
    added_names = {tag.name for tag in change.added}
    added = [tag for tag in tags if tag.name in added_names]
    return tags, added, change.removed


class RuleBackfill:
    """One chunk of a backfill job: re-derive, store (versioned, retried on lost races), and
    publish the tagged events when the job alerts."""

    def __init__(
        self, store: OrderStore, versions: RuleVersions, publish: Publish, *, max_tags: int
    ) -> None:
        self._store = store
        self._versions = versions
        self._publish = publish
        self._max_tags = max_tags
        self._rules: dict[str, RuleSet] = {}

    async def rules_of(self, version: str) -> RuleSet:
        if version not in self._rules:
            stored = await self._versions.get(version)
            if stored is None:
                raise NotFound(f"no rule version {version!r}")
            self._rules[version] = stored.rule_set()
        return self._rules[version]

    async def apply(self, job: dict[str, Any], order_nos: list[str]) -> int:
        """Re-derive these orders' tags; answers how many orders it changed (now or in an
        interrupted earlier run of this chunk)."""
        backfill = Backfill.from_document(job["backfill"])
        rules = await self.rules_of(backfill.version)
        operation = backfill_operation(job["job_id"])
        changed: set[str] = set()
        attempt = partial(
            self._attempt, rules=rules, backfill=backfill, operation=operation, changed=changed
        )
        await until_no_conflicts(order_nos, lambda order_no: order_no, attempt)
        return len(changed)

    async def _attempt(
        self,
        order_nos: list[str],
        *,
        rules: RuleSet,
        backfill: Backfill,
        operation: str,
        changed: set[str],
    ) -> set[str]:
        records = await self._store.load(order_nos)
        now = datetime.now(UTC)
        new_records: list[OrderRecord] = []
        history: list[HistoryEntry] = []
        tagged: list[OrderTagged] = []
        done_before: list[tuple[str, Any, datetime]] = []
        for order_no in order_nos:
            record = records.get(order_no)
            if record is None:
                continue
            event_id = edit_event_id(operation, order_no)
            if str(event_id) in record.applied_events:  # stored by an interrupted run
                changed.add(order_no)
                done_before.append((order_no, event_id, now))
                continue
            outcome = rederive(
                record, rules, version=backfill.version, max_tags=self._max_tags, at=now
            )
            if outcome is None:
                continue
            tags, added, removed = outcome
            new = replace(record, tags=tags, applied_events=[*record.applied_events, str(event_id)])
            new_records.append(new)
            changed.add(order_no)
            if added or removed:
                history.append(
                    HistoryEntry(
                        order_no,
                        str(event_id),
                        now,
                        added,
                        removed,
                        by=f"ruleset:{backfill.version}",
                    )
                )
                tagged.append(
                    tagged_event_for(
                        event_id, now, new, added, [t.name for t in removed], rules.customer_tiers
                    )
                )
        conflicts = await self._store.save(new_records, history)
        changed -= conflicts
        if backfill.alert:
            # events of an interrupted run are published again with the same ids (deduped
            # downstream); an order whose change added nothing yields no alert
            again = await stored_changes_tagged(
                self._store, done_before, records, tiers=rules.customer_tiers
            )
            await self._publish_added([*again, *(t for t in tagged if t.order_no not in conflicts)])
        return conflicts

    async def _publish_added(self, tagged: Sequence[OrderTagged]) -> None:
        with_added = [t for t in tagged if t.tags_added]
        if with_added:
            await self._publish(with_added)


class BackfillJobs(Protocol):
    """What activation needs of ``jobs.Jobs``."""

    async def start_backfill(self, which: OrderFilter, backfill: Backfill, total: int) -> str: ...

    async def running_backfill(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Activated:
    version: str
    previous: str | None
    job_id: str | None  # the backfill, if one was asked for
    orders: int  # in the backfill's window

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "previous": self.previous,
            "job_id": self.job_id,
            "orders": self.orders,
        }


class RuleActivation:
    """Activate a recorded version (or roll back to an earlier one), optionally re-deriving the
    tags of the stored orders of a window under it."""

    def __init__(
        self,
        versions: RuleVersions,
        jobs: BackfillJobs,
        count: Callable[[OrderFilter], Awaitable[int]],  # the read model's count
    ) -> None:
        self._versions = versions
        self._jobs = jobs
        self._count = count

    async def activate(
        self, version: str, *, by: str, backfill: OrderFilter | None, alert: bool = False
    ) -> Activated:
        stored = await self._versions.get(version)
        if stored is None:
            raise NotFound(f"no rule version {version!r}: record it first")
        # read before the check: a version activated meanwhile makes the switch below fail
        current = await self._versions.active_rules()
        try:
            # a candidate recorded before another version took its words is refused too
            await self._versions.check_words(version, stored.rule_set())
        except RuleFileError as error:
            where, problem = error.problems[0]
            raise Invalid(where, problem, detail=str(error)) from None
        running = await self._jobs.running_backfill()
        if running is not None:
            raise Conflict(
                f"the backfill job {running} of an earlier activation still runs; "
                "wait for it to finish before activating another version"
            )
        previous = current.version if current is not None else None
        if previous != version and not await self._versions.activate(
            version, by=by, expected=current
        ):
            raise Conflict("another activation came first; look at the history and try again")
        log.info("rules_version_activated", version=version, previous=previous, by=by)
        if backfill is None:
            return Activated(version, previous, None, 0)
        total = await self._count(backfill)
        job_id = await self._jobs.start_backfill(backfill, Backfill(version, alert), total)
        return Activated(version, previous, job_id, total)

    async def rollback(
        self, version: str | None, *, by: str, backfill: OrderFilter | None, alert: bool = False
    ) -> Activated:
        """Back to ``version``, or to the one active before the current one."""
        if version is None:
            current = await self._versions.active_rules()
            if current is None or current.previous is None:
                raise Conflict("no earlier version to roll back to; name one from the history")
            version = current.previous
        return await self.activate(version, by=by, backfill=backfill, alert=alert)

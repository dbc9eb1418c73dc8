"""The manual tagging use case: a person adds or removes tags on orders.

Writes go through the same versioned store as the rules (a concurrent rule write and a manual
write never overwrite each other), are recorded in the tag history with who did them, and
publish tagged-order events, so the notifier sees a manual "urgent" like a rule's.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from services.tagger.manual import ManualChange, TagChangeRefused, apply_manual, check_tags
from services.tagger.rules.book import RuleBook
from services.tagger.store import HistoryEntry, OrderRecord, OrderStore
from services.tagger.tagging import MAX_WRITE_ATTEMPTS, WriteConflictsPersist, tagged_event_for
from shared.events import OrderTagged

Publish = Callable[[list[OrderTagged]], Awaitable[None]]
EDIT_NAMESPACE = uuid.UUID("2d6f3c0a-8b7e-4f51-9a0e-5c1d2b3a4f60")


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

    async def check(self, change: ManualChange) -> None:
        check_tags(change.add, await self._store.catalog(), self._allow_free_tags)

    async def change(
        self, order_nos: list[str], change: ManualChange, operation: str
    ) -> dict[str, str]:
        """Apply ``change`` to each order once per ``operation``; the outcome per order number:
        changed, unchanged, not_found or "refused: why"."""
        catalog = await self._store.catalog()
        check_tags(change.add, catalog, self._allow_free_tags)
        exclusive = self._rules.current.exclusive_families
        outcomes: dict[str, str] = {}
        pending = list(dict.fromkeys(order_nos))
        for _ in range(MAX_WRITE_ATTEMPTS):
            records = await self._store.load(pending)
            now = datetime.now(UTC)
            changed: list[OrderRecord] = []
            history: list[HistoryEntry] = []
            tagged: list[OrderTagged] = []
            for order_no in pending:
                record = records.get(order_no)
                event_id = edit_event_id(operation, order_no)
                if record is None:
                    outcomes[order_no] = "not_found"
                    continue
                if str(event_id) in record.applied_events:
                    outcomes[order_no] = "unchanged"
                    continue
                try:
                    result = apply_manual(
                        record.tags,
                        change,
                        catalog=catalog,
                        exclusive_families=exclusive,
                        max_tags=self._max_tags,
                        at=now,
                    )
                except TagChangeRefused as error:
                    outcomes[order_no] = f"refused: {error}"
                    continue
                if not result.added and not result.removed:
                    outcomes[order_no] = "unchanged"
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
                        event_id, now, new, result.added, [t.name for t in result.removed]
                    )
                )
                outcomes[order_no] = "changed"
            conflicts = await self._store.save(changed, history)
            await self._publish([t for t in tagged if t.order_no not in conflicts])
            if not conflicts:
                return outcomes
            pending = sorted(conflicts)
        raise WriteConflictsPersist(f"orders kept changing: {pending[:10]}")


__all__ = ["TagChangeRefused", "TagEditing", "edit_event_id"]

"""The Tag API's write use cases: tag changes on named orders or by filter, and the catalog
(create, edit, rename, merge). They decide and call adapters; they know no HTTP."""

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from services.tagger.editing import TagEditing
from services.tagger.errors import Conflict, Invalid, NotFound
from services.tagger.manual import ManualChange
from services.tagger.outcomes import EditResult
from services.tagger.queries import OrderFilter
from services.tagger.rules.book import RuleBook
from services.tagger.rules.schema import CatalogTag
from services.tagger.store import OrderStore, TagExists


class JobStarter(Protocol):
    async def start(
        self,
        kind: str,
        which: OrderFilter,
        change: ManualChange,
        total: int,
        after: dict[str, Any] | None = None,
    ) -> str: ...


class OrderCounter(Protocol):
    async def count(self, which: OrderFilter) -> int: ...


@dataclass(frozen=True, slots=True)
class DryRun:
    would_touch: int


@dataclass(frozen=True, slots=True)
class JobStarted:
    job_id: str
    orders: int


class TagCommands:
    def __init__(
        self,
        editing: TagEditing,
        store: OrderStore,
        orders: OrderCounter,
        jobs: JobStarter,
        rules: RuleBook,
    ) -> None:
        self._editing = editing
        self._store = store
        self._orders = orders
        self._jobs = jobs
        self._rules = rules

    async def change(self, order_nos: list[str], change: ManualChange) -> dict[str, EditResult]:
        """Apply ``change`` to each order (once: a fresh operation id per request)."""
        raw = await self._editing.change(order_nos, change, f"request:{uuid.uuid4().hex}")
        return {order_no: EditResult.of(value) for order_no, value in raw.items()}

    async def change_by_filter(
        self, which: OrderFilter, change: ManualChange, confirm_count: int | None
    ) -> DryRun | JobStarted:
        """Without ``confirm_count`` a dry run; with the count the dry run gave, a job."""
        await self._editing.check(change)
        count = await self._orders.count(which)
        if confirm_count is None:
            return DryRun(count)
        if confirm_count != count:
            raise Conflict(
                f"the filter now matches {count} orders, not {confirm_count}; "
                "check again and confirm the new count"
            )
        return JobStarted(await self._jobs.start("tag_by_filter", which, change, count), count)

    async def catalog(self) -> dict[str, CatalogTag]:
        return await self._store.catalog()

    async def create_tag(self, tag: CatalogTag) -> CatalogTag:
        try:
            await self._store.add_catalog_tag(tag)
        except TagExists:
            raise Conflict(f"tag {tag.name!r} exists") from None
        return tag

    async def update_tag(self, name: str, changes: dict[str, Any]) -> CatalogTag:
        if not changes:
            raise Invalid("body", "nothing to change")
        updated = await self._store.update_catalog_tag(name, changes)
        if updated is None:
            raise NotFound(f"no tag {name!r} in the catalog")
        return updated

    async def rename_tag(self, name: str, new_name: str, who: str) -> JobStarted:
        """The catalog entry gets the new name; every order carrying the old one is rewritten."""
        entry = await self._movable(name)
        try:
            await self._store.add_catalog_tag(entry.model_copy(update={"name": new_name}))
        except TagExists:
            raise Conflict(f"tag {new_name!r} exists: merge into it instead") from None
        return await self._move("rename", name, new_name, who)

    async def merge_tag(self, name: str, into: str, who: str) -> JobStarted:
        """Orders carrying ``name`` carry ``into`` instead; ``name`` leaves the catalog."""
        await self._movable(name)
        if await self._store.catalog_tag(into) is None:
            raise Invalid("into", f"no tag {into!r} in the catalog to merge into")
        if into == name:
            raise Invalid("into", "a tag cannot be merged into itself")
        return await self._move("merge", name, into, who)

    async def _movable(self, name: str) -> CatalogTag:
        entry = await self._store.catalog_tag(name)
        if entry is None:
            raise NotFound(f"no tag {name!r} in the catalog")
        if any(rule.tag == name for rule in self._rules.current.rules):
            raise Conflict(f"rules give the tag {name!r}: change it in the rule file instead")
        return entry

    async def _move(self, kind: str, old: str, new: str, who: str) -> JobStarted:
        which = OrderFilter(all_tags=[old])
        count = await self._orders.count(which)
        change = ManualChange((new,), (old,), who, f"{kind} of tag {old} into {new}")
        job_id = await self._jobs.start(
            kind, which, change, count, after={"delete_catalog_tag": old}
        )
        return JobStarted(job_id, count)

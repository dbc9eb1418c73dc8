"""In-memory adapters for fast tests of the tagger's use cases. Each answers as the real adapter
does; ``tests/integration/test_adapter_contracts.py`` runs the same assertions against both."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.tagger.governance import Refusal, refusals
from services.tagger.manual import ManualChange, TagChangeRefused
from services.tagger.outcomes import EditResult
from services.tagger.queries import OrderFilter
from services.tagger.rules.schema import CatalogTag, Family
from services.tagger.store import TagExists


class InMemoryCatalog:
    """The catalog part of ``OrderStore``."""

    def __init__(self, tags: list[CatalogTag] = ()) -> None:  # type: ignore[assignment]
        self.tags = {tag.name: tag for tag in tags}

    async def catalog(self) -> dict[str, CatalogTag]:
        return dict(self.tags)

    async def catalog_tag(self, name: str) -> CatalogTag | None:
        return self.tags.get(name)

    async def add_catalog_tag(self, tag: CatalogTag) -> None:
        if tag.name in self.tags:
            raise TagExists(tag.name)
        self.tags[tag.name] = tag

    async def update_catalog_tag(self, name: str, changes: dict[str, Any]) -> CatalogTag | None:
        if name not in self.tags:
            return None
        self.tags[name] = self.tags[name].model_copy(update=changes)
        return self.tags[name]

    async def remove_catalog_tag(self, name: str) -> None:
        self.tags.pop(name, None)


@dataclass
class RecordedJob:
    job_id: str
    kind: str
    which: OrderFilter
    change: ManualChange
    total: int
    status: str = "running"


@dataclass
class InMemoryOrders:
    """The read model's queries the use cases call, and the jobs they start."""

    tag_names: dict[str, list[str]] = field(default_factory=dict)  # order_no -> tags
    jobs: list[RecordedJob] = field(default_factory=list)

    async def count(self, which: OrderFilter) -> int:
        if which.model_dump(exclude_defaults=True).keys() - {"all_tags"}:
            raise NotImplementedError("the fake filters by all_tags only")
        return sum(set(which.all_tags) <= set(tags) for tags in self.tag_names.values())

    async def start(
        self,
        kind: str,
        which: OrderFilter,
        change: ManualChange,
        total: int,
        after: dict[str, Any] | None = None,
    ) -> str:
        job = RecordedJob(uuid.uuid4().hex, kind, which, change, total)
        self.jobs.append(job)
        return job.job_id

    def _moves(self, tag: str) -> list[RecordedJob]:
        return [j for j in self.jobs if j.kind in ("rename", "merge") and j.which.all_tags == [tag]]

    async def moving_job(self, tag: str) -> str | None:
        running = [j for j in self._moves(tag) if j.status == "running"]
        return running[0].job_id if running else None

    async def moved(self, tag: str) -> tuple[str, str] | None:
        moves = self._moves(tag)
        return (moves[-1].kind, moves[-1].change.add[0]) if moves else None


class FakeEditing:
    """``TagEditing`` as the commands see it: refuses tags outside the catalog, reports an
    outcome per order (the real rules of a change are ``manual.py``'s, tested on their own).
    Its orders carry names only: a removal is judged as the catalog says."""

    def __init__(
        self,
        catalog: InMemoryCatalog,
        orders: InMemoryOrders,
        families: Mapping[str, Family] | None = None,
    ) -> None:
        self._catalog = catalog
        self._orders = orders
        self._families = families or {}
        self.refuse: dict[str, str] = {}  # order_no -> reason, for refusals per order

    async def removal_refusals(self, order_nos: list[str], change: ManualChange) -> list[Refusal]:
        if change.role is None:
            return []
        return refusals((), change.remove, change.role, self._catalog.tags, self._families)

    async def check(self, change: ManualChange) -> None:
        for name in change.add:
            if name not in self._catalog.tags:
                raise TagChangeRefused(f"tag {name!r} is not in the catalog")

    async def change(
        self, order_nos: list[str], change: ManualChange, operation: str
    ) -> Mapping[str, EditResult | str]:
        await self.check(change)
        outcomes: dict[str, EditResult | str] = {}
        for order_no in order_nos:
            if order_no not in self._orders.tag_names:
                outcomes[order_no] = "not_found"
            elif order_no in self.refuse:
                outcomes[order_no] = f"refused: {self.refuse[order_no]}"
            else:
                tags = self._orders.tag_names[order_no]
                new = [t for t in tags if t not in change.remove] + [
                    t for t in change.add if t not in tags
                ]
                outcomes[order_no] = "unchanged" if new == tags else "changed"
                self._orders.tag_names[order_no] = new
        return outcomes

"""The Tag API's write use cases: tag changes on named orders or by filter, and the catalog
(create, edit, rename, merge). They decide and call adapters; they know no HTTP."""

import asyncio
import contextlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Protocol

from services.tagger.errors import Conflict, Gone, Invalid, NotFound
from services.tagger.governance import Refusal, check_change, forbidden, refusals
from services.tagger.manual import ManualChange, TagChangeRefused, named_by_rules
from services.tagger.outcomes import EditResult
from services.tagger.queries import OrderFilter
from services.tagger.rule_tags import (
    fact_prefixes,
    given_by_rules,
    given_to_customers,
    listed_catalog,
    settable_tags,
)
from services.tagger.rules.book import RuleBook
from services.tagger.rules.schema import TAG_NAME, CatalogTag, Family, RuleSet
from services.tagger.store import TagExists
from services.tagger.tag_names import LikelyDuplicates, likely_duplicates, near_duplicates


class Editing(Protocol):
    """The manual-change use case (``editing.TagEditing``)."""

    async def check(self, change: ManualChange) -> None: ...

    async def removal_refusals(
        self, order_nos: list[str], change: ManualChange
    ) -> list[Refusal]: ...

    async def change(
        self, order_nos: list[str], change: ManualChange, operation: str
    ) -> Mapping[str, EditResult | str]: ...


class Catalog(Protocol):
    """The tag catalog's store (``store.OrderStore``)."""

    async def catalog(self) -> dict[str, CatalogTag]: ...

    async def catalog_tag(self, name: str) -> CatalogTag | None: ...

    async def add_catalog_tag(self, tag: CatalogTag) -> None: ...

    async def update_catalog_tag(self, name: str, changes: dict[str, Any]) -> CatalogTag | None: ...

    async def remove_catalog_tag(self, name: str) -> None: ...


class JobStarter(Protocol):
    async def start(
        self,
        kind: str,
        which: OrderFilter,
        change: ManualChange,
        total: int,
        after: dict[str, Any] | None = None,
    ) -> str: ...


class OrderQueries(Protocol):
    async def count(self, which: OrderFilter) -> int: ...

    async def moving_job(self, tag: str) -> str | None: ...

    async def moved(self, tag: str) -> tuple[str, str] | None: ...


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
        editing: Editing,
        store: Catalog,
        orders: OrderQueries,
        jobs: JobStarter,
        rules: RuleBook,
    ) -> None:
        self._editing = editing
        self._store = store
        self._orders = orders
        self._jobs = jobs
        self._rules = rules

    async def change(
        self, order_nos: list[str], change: ManualChange, *, role: str
    ) -> dict[str, EditResult]:
        """Apply ``change`` to each order (once: a fresh operation id per request), if ``role``
        may add its tags and remove them from these orders by hand (each judged under the
        family the order's tag carries: ``governance.family_of``)."""
        change = replace(change, role=role)
        catalog = await self._store.catalog()
        found = refusals(change.add, (), role, catalog, self.families)
        found += await self._editing.removal_refusals(order_nos, change)
        if found:  # refused as a whole, before any order changes
            raise forbidden(found)
        raw = await self._editing.change(order_nos, change, f"request:{uuid.uuid4().hex}")
        return {order_no: EditResult.of(value) for order_no, value in raw.items()}

    async def change_by_filter(
        self, which: OrderFilter, change: ManualChange, confirm_count: int | None, *, role: str
    ) -> DryRun | JobStarted:
        """Without ``confirm_count`` a dry run; with the count the dry run gave, a job. Its
        orders are not at hand yet: the change is checked as the catalog says, and the job
        judges each order's tag again under the family it carries."""
        change = replace(change, role=role)
        await self.check_permissions(change, role)
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

    async def check_permissions(self, change: ManualChange, role: str) -> None:
        """403 naming each tag the role may not add or remove, the tags not at hand (the
        catalog's permissions: ``governance.refusals``)."""
        catalog = await self._store.catalog()
        check_change(change.add, change.remove, role, catalog, self.families)

    async def check_customer_tag(self, tag: str, role: str) -> None:
        """A tag a person adds to a customer, checked as one added to an order: 403 where the
        role may not add it; 422 naming ``tag`` where the catalog does not store it (unless
        free tags are allowed), it is deactivated, or the rules name it from the data
        (``prefers:*``: a hand-set one would never follow the figures it claims)."""
        change = ManualChange((tag,), (), "")
        await self.check_permissions(change, role)
        try:
            await self._editing.check(change)
        except TagChangeRefused as refused:
            raise Invalid("tag", str(refused), detail=str(refused)) from None

    @property
    def families(self) -> dict[str, Family]:
        return {family.name: family for family in self._rules.current.families}

    async def catalog(self) -> dict[str, CatalogTag]:
        return await self._store.catalog()

    def on_customers(self, name: str) -> bool:
        """Whether only customer rules give the tag (``rule_tags.given_to_customers``)."""
        return given_to_customers(name, self._rules.current)

    def named_by_rules(self, name: str) -> bool:
        """Whether the rules name the tag from the data (``status:pending``, ``prefers:数码``):
        only they set it, stored in the catalog or not (``manual.check_tags`` refuses it by
        hand with the same function)."""
        return named_by_rules(name, self.fact_prefixes()) is not None

    def fact_prefixes(self) -> tuple[str, ...]:
        """The prefixes the rules name tags under (``rule_tags.fact_prefixes``): computed once
        per request by callers that judge many names (``name.startswith(prefixes)``)."""
        return tuple(fact_prefixes(self._rules.current))

    async def listed_catalog(self, in_use: set[str]) -> dict[str, CatalogTag]:
        """The stored catalog and every tag the rules can set that it lacks (the values of a
        fact-named family in ``in_use``: tags some order or customer carries)."""
        return (await self.catalog_listing(in_use))[0]

    async def catalog_listing(
        self, in_use: set[str], *, free_from: Iterable[str] = ()
    ) -> tuple[dict[str, CatalogTag], set[str]]:
        """``listed_catalog``, and the names of the tags the catalog stores: only those may be
        added by hand (``manual.check_tags``), and of those not one the rules name from the
        data (``named_by_rules``). With free tags allowed, ``free_from`` holds the tags orders
        carry (every picker is over orders): each the catalog does not store nor the rules
        give is listed as a free tag, so that filters and removals can pick it (its
        permissions are its name's family's, else the defaults)."""
        stored = await self._store.catalog()
        rules = self._rules.current
        listing = listed_catalog(stored, rules, in_use)
        free = {
            name: CatalogTag(name=name)
            for name in free_from
            if name not in listing and _is_free_tag(name, rules)
        }
        if free:
            listing = dict(sorted({**listing, **free}.items()))
        return listing, set(stored)

    async def catalog_tag(self, name: str) -> CatalogTag:
        """The tag; 404, or 410 naming where a rename or merge took it."""
        tag = await self._store.catalog_tag(name)
        if tag is None:
            await self._not_in_catalog(name)
        return tag

    async def duplicates(self) -> list[LikelyDuplicates]:
        """Pairs of catalog tags whose names or labels nearly equal each other (the review)."""
        # off the event loop: ~0.1 s for 1,000 tags on a loaded 2-core machine
        return await asyncio.to_thread(likely_duplicates, await self._store.catalog())

    async def _refuse_near_duplicates(
        self, spellings: list[str], exclude: tuple[str, ...] = ()
    ) -> None:
        """409 naming the existing tags a new name or label nearly equals; the client confirms
        (``confirm_duplicate``) when the two are meant to differ."""
        catalog = await self._store.catalog()
        found = await asyncio.to_thread(near_duplicates, spellings, catalog, exclude)
        if found:
            raise Conflict(
                "; ".join(str(d) for d in found)
                + ": use or merge into it, or send confirm_duplicate=true to keep both"
            )

    async def create_tag(self, tag: CatalogTag, *, confirm_duplicate: bool = False) -> CatalogTag:
        job_id = await self._orders.moving_job(tag.name)
        if job_id is not None:
            raise Conflict(f"job {job_id} is still moving orders off tag {tag.name!r}; wait for it")
        if await self._store.catalog_tag(tag.name) is not None:
            raise Conflict(f"tag {tag.name!r} exists")
        if not confirm_duplicate:
            await self._refuse_near_duplicates([tag.name, *tag.labels.values()])
        try:
            await self._store.add_catalog_tag(tag)
        except TagExists:
            raise Conflict(f"tag {tag.name!r} exists") from None
        return tag

    async def update_tag(
        self, name: str, changes: dict[str, Any], *, confirm_duplicate: bool = False
    ) -> CatalogTag:
        if not changes:
            raise Invalid("body", "nothing to change")
        if changes.get("labels") and not confirm_duplicate:
            await self._refuse_near_duplicates(list(changes["labels"].values()), exclude=(name,))
        updated = await self._store.update_catalog_tag(name, changes)
        if updated is None and await self._add_rule_tag(name):
            updated = await self._store.update_catalog_tag(name, changes)
        if updated is None:
            await self._not_in_catalog(name)
        return updated

    async def _add_rule_tag(self, name: str) -> bool:
        """Store a tag the rules can set but the catalog lists without storing (``status:*``,
        ``category:*`` ...), so it can be named and edited like the others."""
        found = [tag for tag in settable_tags(self._rules.current, [name]) if tag.name == name]
        if not found:
            return False
        with contextlib.suppress(TagExists):  # stored meanwhile by another request
            await self._store.add_catalog_tag(found[0])
        return True

    async def rename_tag(
        self, name: str, new_name: str, who: str, *, confirm_duplicate: bool = False
    ) -> JobStarted:
        """The catalog entry gets the new name at once; a job rewrites every order carrying the
        old one. 422 naming ``new_name`` where the rules name it (``_refuse_rules_name``)."""
        self._refuse_rules_name("new_name", new_name)
        entry = await self._movable(name)
        if await self._store.catalog_tag(new_name) is not None:
            raise Conflict(f"tag {new_name!r} exists: merge into it instead")
        if not confirm_duplicate:
            await self._refuse_near_duplicates([new_name], exclude=(name,))
        try:
            await self._store.add_catalog_tag(entry.model_copy(update={"name": new_name}))
        except TagExists:
            raise Conflict(f"tag {new_name!r} exists: merge into it instead") from None
        return await self._move("rename", name, new_name, who)

    async def merge_tag(self, name: str, into: str, who: str) -> JobStarted:
        """``name`` leaves the catalog at once; a job makes its orders carry ``into`` instead.
        422 naming ``into`` where the rules name it (``_refuse_rules_name``)."""
        self._refuse_rules_name("into", into)
        await self._movable(name)
        if into == name:
            raise Conflict(f"tag {name!r} cannot be merged into itself")
        if await self._store.catalog_tag(into) is None:
            raise Conflict(f"no tag {into!r} in the catalog to merge into: create it first")
        return await self._move("merge", name, into, who)

    def _refuse_rules_name(self, field: str, name: str) -> None:
        """A rename or merge would put ``name`` on orders by hand (the job's change): refused
        where the rules name it from the data (``status:pending``), stored in the catalog
        (labelled) or not, as ``manual.check_tags`` refuses it on an order."""
        prefix = named_by_rules(name, self.fact_prefixes())
        if prefix is not None:
            raise Invalid(
                field,
                f"tag {name!r} is one the rules name from the data (prefix {prefix!r}): "
                "only they set it; rename or merge into a name outside that prefix",
            )

    async def _movable(self, name: str) -> CatalogTag:
        entry = await self._store.catalog_tag(name)
        if entry is None:
            await self._not_in_catalog(name)
        if given_by_rules(name, self._rules.current):
            raise Conflict(f"rules give the tag {name!r}: change it in the rule file instead")
        # one move of a tag at a time: a second would fight the first over the same orders
        job_id = await self._orders.moving_job(name)
        if job_id is not None:
            raise Conflict(f"job {job_id} is already moving tag {name!r}; wait for it to finish")
        return entry

    async def _not_in_catalog(self, name: str) -> NoReturn:
        """404, or 410 naming the new name when a rename or merge took the tag away."""
        moved = await self._orders.moved(name)
        if moved is not None:
            kind, new = moved
            raise Gone(
                f"tag {name!r} was {kind}d into {new!r}"
                if kind == "merge"
                else f"tag {name!r} was renamed to {new!r}"
            )
        raise NotFound(f"no tag {name!r} in the catalog")

    async def _move(self, kind: str, old: str, new: str, who: str) -> JobStarted:
        which = OrderFilter(all_tags=[old])
        count = await self._orders.count(which)
        change = ManualChange((new,), (old,), who, f"{kind} of tag {old} into {new}")
        job_id = await self._jobs.start(kind, which, change, count)
        # The old name leaves the catalog now, not when the job ends: a job that deleted it on
        # finishing would delete a tag of that name created meanwhile.
        await self._store.remove_catalog_tag(old)
        return JobStarted(job_id, count)


def _is_free_tag(name: str, rules: RuleSet) -> bool:
    """Whether a tag in use the catalog does not store is a person's: one no rule gives (a
    rule version activated since the catalog was seeded gives tags it does not store yet),
    with a name the catalog could hold (a rule names tags from data, ``category:café``, or
    did under a prefix a newer version dropped)."""
    return not given_by_rules(name, rules) and re.fullmatch(TAG_NAME, name) is not None

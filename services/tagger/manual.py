"""Tags changed by hand: the catalog, exclusive families and the per-order limit still hold.

Pure: given an order's tags and a change, the new tags or the reason the change is refused.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from services.tagger.rules.engine import TagChange
from services.tagger.rules.schema import CatalogTag
from shared.events import AppliedTag, TagSource


class TagChangeRefused(ValueError):
    """A manual change breaks a rule of the catalog; the message says which and why."""


class RemovalForbidden(TagChangeRefused):
    """The change removes a tag the catalog's permissions keep: the role may not remove it by
    hand, or a rule gave it and people may not remove that (``governance.removal_refusal``)."""


@dataclass(frozen=True, slots=True)
class ManualChange:
    add: tuple[str, ...]
    remove: tuple[str, ...]
    by: str
    reason: str = "added by hand"
    # the staff role the change is made as, judged per order where the tags are at hand;
    # None: a change the system makes for an admin (a rename or merge)
    role: str | None = None


def check_tags(
    names: tuple[str, ...],
    catalog: dict[str, CatalogTag],
    allow_free_tags: bool,
    rule_prefixes: Iterable[str] = (),
) -> None:
    """Refuse unknown or inactive tags unless free tags are allowed, and every name in a
    namespace the rules name from the data (``status:``, ``prefers:``:
    ``rule_tags.fact_prefixes``), which filters, segments and alerts read as what the order or
    customer data says: stored or not (labelling one on the Tags page stores it), free tags or
    not, only the rules set it.
    """
    prefixes = tuple(rule_prefixes)
    for name in names:
        prefix = named_by_rules(name, prefixes)
        if prefix is not None:
            raise TagChangeRefused(
                f"tag {name!r} is one the rules name from the data (prefix {prefix!r}): "
                "only they set it; a tag added by hand needs a name outside that prefix"
            )
        entry = catalog.get(name)
        if entry is None and not allow_free_tags:
            raise TagChangeRefused(
                f"tag {name!r} is not in the catalog (free tags are not allowed)"
            )
        if entry is not None and not entry.active:
            raise TagChangeRefused(f"tag {name!r} is deactivated in the catalog")


def named_by_rules(name: str, rule_prefixes: Iterable[str]) -> str | None:
    """The prefix under which the rules name the tag from the data (``status:`` of
    ``status:pending``), None for a name people may add by hand: the one place for that rule
    (``check_tags``; ``GET /tags``'s ``named_by_rules``)."""
    return next((prefix for prefix in rule_prefixes if name.startswith(prefix)), None)


def apply_manual(
    current: list[AppliedTag],
    change: ManualChange,
    *,
    catalog: dict[str, CatalogTag],
    exclusive_families: set[str],
    max_tags: int,
    at: datetime,
    refuse_removal: Callable[[AppliedTag], str | None] = lambda tag: None,
) -> TagChange:
    """Remove, then add; adding a tag of an exclusive family drops the family's other tags
    (adding "urgent" removes "regular"). Past ``max_tags`` the change is refused. Removing a
    tag is refused when ``refuse_removal`` says why (``governance.removal_refusal``)."""
    removing = set(change.remove)
    for tag in current:
        why = refuse_removal(tag) if tag.name in removing else None
        if why is not None:
            raise RemovalForbidden(why)
    adding: list[AppliedTag] = []
    for name in dict.fromkeys(change.add):
        entry = catalog.get(name)
        adding.append(
            AppliedTag(
                name=name,
                family=entry.family if entry else None,
                source=TagSource.MANUAL,
                by=change.by,
                reason=change.reason,
                at=at,
            )
        )
    families = {tag.family for tag in adding if tag.family in exclusive_families}
    added_names = {tag.name for tag in adding}
    kept = [
        tag
        for tag in current
        if tag.name not in removing and tag.name not in added_names and tag.family not in families
    ]
    # a tag the order already carries by hand stays as it was; one a rule gave becomes manual,
    # so that rule re-evaluation no longer removes what a person asked for
    tags = kept + [_manual_or_existing(tag, current) for tag in adding]
    if len(tags) > max_tags:
        raise TagChangeRefused(
            f"the order would carry {len(tags)} tags; at most {max_tags} are allowed per order"
        )
    new_names = {tag.name for tag in tags}
    return TagChange(
        tags=tags,
        added=[tag for tag in tags if tag not in current],
        removed=[tag for tag in current if tag.name not in new_names],
        dropped_by_limit=[],
    )


def _manual_or_existing(tag: AppliedTag, current: list[AppliedTag]) -> AppliedTag:
    existing = next((t for t in current if t.name == tag.name), None)
    return existing if existing is not None and existing.source is TagSource.MANUAL else tag

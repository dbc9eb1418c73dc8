"""A customer as the tagger keeps it, and the pure decisions over it: the new tag set after an
evaluation, the history it writes, and when time alone could change a tag next.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.tagger.customers.stored import applied_tags
from services.tagger.rules.conditions import AllOf, AnyOf, FactTest, Not
from services.tagger.rules.customer_facts import (
    PREFERENCE_WINDOW_DAYS,
    SECONDS_PER_DAY,
    WINDOWS,
    CustomerProfile,
    LiveFigures,
)
from services.tagger.rules.customer_rules import CustomerRule
from services.tagger.rules.engine import Decision, decided_tag
from shared.events import AppliedTag, TagSource
from shared.stored_tags import ReasonTemplates

HISTORY_KEPT = 200  # newest changes kept on the customer document
TIME_FACTS = ("days_since_last_order", "days_since_first_order")


@dataclass(slots=True)
class CustomerRecord:
    customer_id: str
    profile: CustomerProfile = field(default_factory=CustomerProfile)
    profile_at: datetime | None = None
    tags: list[AppliedTag] = field(default_factory=list)
    version: int = 0  # 0: not stored yet
    # the document as read (without its history): a write sets only the fields that differ
    stored: dict[str, Any] | None = None
    # each tag as read beside its stored form: one the evaluation kept (the very object) is
    # written in that form, not serialised again
    read_tags: list[tuple[AppliedTag, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def from_document(
        cls, document: dict[str, Any], templates: ReasonTemplates | None = None
    ) -> "CustomerRecord":
        """``templates``: the customer rules' (a reason stored as its values is rendered)."""
        stored_tags = document.get("tags", [])
        tags = applied_tags(stored_tags, templates)
        return cls(
            customer_id=document["_id"],
            profile=CustomerProfile(
                name=document.get("name"),
                company=document.get("company"),
                vip=bool(document.get("vip")),
            ),
            profile_at=document.get("profile_at"),
            tags=tags,
            version=int(document.get("version", 0)),
            stored=document,
            read_tags=list(zip(tags, stored_tags, strict=True)),
        )


@dataclass(frozen=True, slots=True)
class TagChange:
    tags: list[AppliedTag]
    added: list[AppliedTag]
    removed: list[AppliedTag]


def merge_customer_tags(
    current: list[AppliedTag], decisions: list[Decision], *, exclusive: set[str], at: datetime
) -> TagChange:
    """Manual tags stay (and beat rules in their exclusive family); rule tags follow the
    decisions. A rule tag held before keeps its ``at`` (since when the customer has had it) and
    takes the newest rule version and reason (the figures behind it move)."""
    manual = [tag for tag in current if tag.source is TagSource.MANUAL]
    manual_names = {tag.name for tag in manual}
    manual_families = {tag.family for tag in manual if tag.family in exclusive}
    before = {tag.name: tag for tag in current if tag.source is TagSource.RULE}
    rule_tags = [
        _rule_tag(d, before.get(d.tag), at)
        for d in decisions
        if d.tag not in manual_names and d.family not in manual_families
    ]
    tags = manual + rule_tags
    new_names, old_names = {t.name for t in tags}, {t.name for t in current}
    return TagChange(
        tags=tags,
        added=[t for t in tags if t.name not in old_names],
        removed=[t for t in current if t.name not in new_names],
    )


def _rule_tag(decision: Decision, before: AppliedTag | None, at: datetime) -> AppliedTag:
    """The tag a decision gives: the one held before when nothing about it changed (its family
    included: it moves with the catalog), else a new one since ``at`` (or since the one held
    before). A customer holds ~10 tags; validating each on every evaluation was a tenth of the
    customer step's CPU (``decided_tag``)."""
    if before is not None and (
        before.family,
        before.rule_id,
        before.rule_version,
        before.reason,
    ) == (decision.family, decision.rule_id, decision.rule_version, decision.reason):
        return before
    return decided_tag(decision, before.at if before is not None else at)


def history_entries(change: TagChange, at: datetime, by: str | None = None) -> list[dict[str, Any]]:
    """The change as history rows: who or which rule (and version), why, when."""
    rows = []
    for kind, tags in (("added", change.added), ("removed", change.removed)):
        for tag in tags:
            rows.append(
                {
                    "at": at,
                    "change": kind,
                    "tag": tag.name,
                    "source": tag.source.value if by is None else TagSource.MANUAL.value,
                    "rule_id": tag.rule_id if by is None else None,
                    "rule_version": tag.rule_version if by is None else None,
                    "by": by,
                    "reason": tag.reason,
                }
            )
    return rows


def review_thresholds(rules: Iterable[CustomerRule]) -> tuple[float, ...]:
    """The ``days_since_*`` thresholds the customer rules test, each once (worked out once a
    batch, not once a customer)."""
    return tuple(sorted({t for rule in rules for t in _day_thresholds(rule.when)}))


def next_review_at(
    figures: LiveFigures, thresholds: Sequence[float], now: float
) -> datetime | None:
    """The earliest time after ``now`` when the passing of time alone can change a customer
    fact a rule tests: an order or a day's spend leaving a window, or a ``days_since_*``
    threshold of a rule being crossed (``review_thresholds``). None: nothing changes until
    the next order."""
    moments = [
        *(t + window * SECONDS_PER_DAY for window in WINDOWS for t in figures.recent_order_times),
        *((d + window) * SECONDS_PER_DAY for window in WINDOWS for d in figures.spend_by_day),
        *((d + PREFERENCE_WINDOW_DAYS) * SECONDS_PER_DAY for d, _ in figures.by_category),
        # just past the threshold, so "gt" and "gte" both hold at the review
        *(
            since + days * SECONDS_PER_DAY + 1
            for since in (figures.last_order_at, figures.first_order_at)
            if since is not None
            for days in thresholds
        ),
    ]
    earliest = min((moment for moment in moments if moment > now), default=None)
    return None if earliest is None else datetime.fromtimestamp(earliest, UTC)


def _day_thresholds(condition: Any) -> Iterable[float]:
    if isinstance(condition, FactTest):
        if condition.fact in TIME_FACTS:
            bounds = [condition.gt, condition.gte, condition.lt, condition.lte]
            bounds += list(condition.between or ())
            yield from (float(b) for b in bounds if b is not None)
    elif isinstance(condition, AllOf | AnyOf):
        for part in condition.all if isinstance(condition, AllOf) else condition.any:
            yield from _day_thresholds(part)
    elif isinstance(condition, Not):
        yield from _day_thresholds(condition.not_)

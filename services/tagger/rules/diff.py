"""What a candidate rule set would change: both rule sets over the same order and figures.

Pure: the diff against history, shadow mode and their tests all compare through
``compare_order``, so "what the diff says" and "what a re-tag would write" cannot drift apart.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from services.tagger.rules.engine import Decision, decide, fires, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import Rule, RuleSet
from shared.events import AppliedTag
from shared.models import Order, OrderStatus

EXAMPLES_PER_TAG = 5
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # merge_tags stamps new tags; the diff ignores it


class Change(StrEnum):
    GAINED = "gained"
    LOST = "lost"


@dataclass(slots=True)  # not frozen: a replay makes one per stored order, and frozen costs
class ReplayOrder:
    """A stored order as a replay needs it: who and when (for the report), its status, the
    tags it carries, and the facts the rules test (the order with the customer figures it was
    tagged with: ``order_facts``, or ``stored_order_facts`` straight from a stored document)."""

    order_no: str
    customer_id: str
    created_at: datetime
    status: OrderStatus
    tags: list[AppliedTag]
    facts: dict[str, object]

    @classmethod
    def of(
        cls, order: Order, status: OrderStatus, tags: list[AppliedTag], figures: FiguresSnapshot
    ) -> "ReplayOrder":
        facts = order_facts(order, figures, status)
        return cls(order.order_no, order.customer.id, order.created_at, status, tags, facts)


@dataclass(frozen=True, slots=True)
class OrderDiff:
    """The tags one order would gain and lose, and the rule behind each (the candidate's rule
    for a gained tag, the active one's for a lost tag)."""

    order_no: str
    customer_id: str
    created_at: datetime
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    rule_of: dict[str, str]


def tags_after(rules: RuleSet, order: ReplayOrder, max_tags: int) -> list[AppliedTag]:
    """The tags a re-tag of ``order`` with ``rules`` would write (manual tags kept)."""
    return _merged(rules, order, decide(rules, order.facts), max_tags)


def changed_conditions(active: RuleSet, candidate: RuleSet) -> list[tuple[Rule, Rule]] | None:
    """When the two rule sets differ only in some rules' conditions (the same rules in the
    same order, giving the same tags in the same families): those rules' pairs. An order for
    which each pair agrees gets the same decisions from both sets, so it cannot change. None
    when the sets differ otherwise (a rule added, moved or retargeted): compare every rule."""
    if len(active.rules) != len(candidate.rules) or active.families != candidate.families:
        return None
    if {t.name: t.family for t in active.tags} != {t.name: t.family for t in candidate.tags}:
        return None
    pairs = []
    for before, after, key_before, key_after in zip(
        active.rules,
        candidate.rules,
        active.condition_keys,
        candidate.condition_keys,
        strict=True,
    ):
        if (before.tag, before.tag_from, before.tag_prefix, before.family) != (
            after.tag,
            after.tag_from,
            after.tag_prefix,
            after.family,
        ):
            return None
        if key_before != key_after:
            pairs.append((before, after))
    return pairs


def compare_order(
    active: RuleSet,
    candidate: RuleSet,
    order: ReplayOrder,
    max_tags: int,
) -> OrderDiff | None:
    """How the order's tags under ``candidate`` differ from those under ``active``; None if
    they are the same. Both see the same facts: the order as stored, its stored figures."""
    facts = order.facts
    verdicts: dict[str, bool] = {}
    before = decide(active, facts, verdicts=verdicts, reasons=False)
    after = decide(candidate, facts, verdicts=verdicts, reasons=False)
    # the tag set depends only on the decided (tag, family) sequence: equal lists, equal tags
    if [(d.tag, d.family) for d in before] == [(d.tag, d.family) for d in after]:
        return None
    tags_before = {t.name: t for t in _merged(active, order, before, max_tags)}
    tags_after_ = {t.name: t for t in _merged(candidate, order, after, max_tags)}
    gained = tuple(name for name in tags_after_ if name not in tags_before)
    lost = tuple(name for name in tags_before if name not in tags_after_)
    if not gained and not lost:
        return None
    rule_of = {name: tags_after_[name].rule_id or "manual" for name in gained}
    rule_of |= {name: tags_before[name].rule_id or "manual" for name in lost}
    return OrderDiff(order.order_no, order.customer_id, order.created_at, gained, lost, rule_of)


def _merged(
    rules: RuleSet, order: ReplayOrder, decisions: list[Decision], max_tags: int
) -> list[AppliedTag]:
    change = merge_tags(
        order.tags,
        decisions,
        exclusive_families=rules.exclusive_families,
        max_tags=max_tags,
        at=_NO_TIME,
    )
    return change.tags


@dataclass
class TagDelta:
    gained: int = 0
    lost: int = 0
    gained_examples: list[str] = field(default_factory=list)
    lost_examples: list[str] = field(default_factory=list)


@dataclass
class RuleDiff:
    """The tally of a comparison: orders compared and changed, and per tag how many orders
    would gain or lose it (with a few order numbers as examples), and per rule."""

    only_tags: frozenset[str] | None = None  # report only these tags (None: all)
    orders_compared: int = 0
    orders_changed: int = 0
    by_tag: dict[str, TagDelta] = field(default_factory=dict)
    by_rule: Counter[tuple[str, str, Change]] = field(default_factory=Counter)

    def relevant(self, diff: OrderDiff) -> OrderDiff | None:
        """The diff restricted to ``only_tags``; None if nothing of it is left."""
        if self.only_tags is None:
            return diff
        gained = tuple(t for t in diff.gained if t in self.only_tags)
        lost = tuple(t for t in diff.lost if t in self.only_tags)
        if not gained and not lost:
            return None
        rule_of = {t: diff.rule_of[t] for t in (*gained, *lost)}
        return OrderDiff(diff.order_no, diff.customer_id, diff.created_at, gained, lost, rule_of)

    def add(self, diff: OrderDiff) -> None:
        self.orders_changed += 1
        for change, names in ((Change.GAINED, diff.gained), (Change.LOST, diff.lost)):
            for name in names:
                delta = self.by_tag.setdefault(name, TagDelta())
                examples = delta.gained_examples if change is Change.GAINED else delta.lost_examples
                if change is Change.GAINED:
                    delta.gained += 1
                else:
                    delta.lost += 1
                if len(examples) < EXAMPLES_PER_TAG:
                    examples.append(diff.order_no)
                self.by_rule[(diff.rule_of[name], name, change)] += 1

    def compare(
        self, active: RuleSet, candidate: RuleSet, orders: Iterable[ReplayOrder], max_tags: int
    ) -> list[OrderDiff]:
        """Compare a batch of orders, tally them, and answer the changed ones. Where only some
        rules' conditions differ, an order is decided in full only when one of those rules
        fires under one set and not the other (most orders: two conditions, not two walks)."""
        changed = []
        pairs = changed_conditions(active, candidate)
        for order in orders:
            self.orders_compared += 1
            facts = order.facts
            if pairs is not None and all(fires(a, facts) == fires(c, facts) for a, c in pairs):
                continue
            diff = compare_order(active, candidate, order, max_tags)
            if diff is not None and (diff := self.relevant(diff)) is not None:
                self.add(diff)
                changed.append(diff)
        return changed

    @classmethod
    def from_report(
        cls, report: dict[str, Any] | None, only_tags: frozenset[str] | None = None
    ) -> "RuleDiff":
        """The tally a ``report()`` was made of (a diff job resumes from the one it kept)."""
        tally = cls(only_tags=only_tags)
        if not report:
            return tally
        tally.orders_compared = int(report["orders_compared"])
        tally.orders_changed = int(report["orders_changed"])
        for row in report["tags"]:
            tally.by_tag[row["tag"]] = TagDelta(
                int(row["gained"]),
                int(row["lost"]),
                list(row["gained_examples"]),
                list(row["lost_examples"]),
            )
        for row in report["rules"]:
            key = (row["rule_id"], row["tag"], Change(row["change"]))
            tally.by_rule[key] = int(row["orders"])
        return tally

    def report(self) -> dict[str, Any]:
        """The tally as plain data (JSON for the API, a table for the command line)."""
        return {
            "orders_compared": self.orders_compared,
            "orders_changed": self.orders_changed,
            "tags": [
                {
                    "tag": name,
                    "gained": delta.gained,
                    "lost": delta.lost,
                    "gained_examples": delta.gained_examples,
                    "lost_examples": delta.lost_examples,
                }
                for name, delta in sorted(self.by_tag.items())
            ],
            "rules": [
                {"rule_id": rule_id, "tag": tag, "change": change.value, "orders": count}
                for (rule_id, tag, change), count in sorted(self.by_rule.items())
            ],
        }

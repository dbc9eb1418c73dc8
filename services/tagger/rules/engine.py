"""Deciding an order's tags from the rules, and merging them with the tags it already carries."""

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from services.tagger.rules.reasons import default_reason, render_reason
from services.tagger.rules.schema import Rule, RuleSet, once_per_rule_set
from shared.events import AppliedTag, TagSource, built, to_millisecond

T = TypeVar("T")

_TAG_UNSAFE = re.compile(r"[^\w:.-]+")  # keeps letters of any script: "category:家电"


class Decision(NamedTuple):
    """A rule's verdict that an order should carry a tag, and why (a named tuple: built for
    every tag of every order, at the cost of a tuple)."""

    tag: str
    family: str | None
    rule_id: str
    rule_version: int
    reason: str


@dataclass(frozen=True, slots=True)
class TagChange:
    tags: list[AppliedTag]
    added: list[AppliedTag]
    removed: list[AppliedTag]
    dropped_by_limit: list[Decision]


def fires(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Whether the rule's conditions hold for the order (its tags then depend on its tag spec)."""
    return rule.applies(facts)


def decide(
    rules: RuleSet,
    facts: Mapping[str, Any],
    *,
    verdicts: dict[str, bool] | None = None,
    reasons: bool = True,
) -> list[Decision]:
    """Every tag the rules give this order, in rule order; first rule wins an exclusive family.

    Comparing two rule sets over one order (the diff, shadow mode) passes the same ``verdicts``
    to both calls: a rule whose conditions are the same in both is evaluated once. Without
    ``reasons`` the reasons are left empty (a comparison needs only the tags)."""
    exclusive = rules.exclusive_families
    plan = _plan_of(rules)
    decisions: list[Decision] = []
    seen_tags: set[str] = set()
    filled_families: set[str] = set()
    for rule, condition_key, fixed in plan.rules:
        if verdicts is None:
            verdict = rule.applies(facts)
        elif (known := verdicts.get(condition_key)) is not None:
            verdict = known
        else:
            verdict = verdicts[condition_key] = rule.applies(facts)
        if not verdict:
            continue
        for tag, value in fixed or _tags_of(rule, facts):
            family = rules.family_of(tag, rule)
            if tag in seen_tags or (family in exclusive and family in filled_families):
                continue
            seen_tags.add(tag)
            if family is not None:
                filled_families.add(family)
            decisions.append(
                Decision(
                    tag,
                    family,
                    rule.id,
                    rule.version,
                    render_reason(rule.reason, facts, value) if reasons else "",
                )
            )
    for family, default in plan.defaults:
        if family not in filled_families:
            decisions.append(default)
    return decisions


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``decide`` reads of a rule set, prepared once per rule set: each rule with its
    condition key and its fixed tag (None: the tags come from a fact), and each family's
    default decision."""

    rules: list[tuple[Rule, str, tuple[tuple[str, None]] | None]]
    defaults: list[tuple[str, Decision]]


_PLANS: dict[int, tuple[RuleSet, _Plan]] = {}


def _plan_of(rules: RuleSet) -> _Plan:
    return once_per_rule_set(_PLANS, rules, _build_plan)


def _build_plan(rules: RuleSet) -> _Plan:
    return _Plan(
        rules=[
            (rule, key, None if rule.tag is None else ((rule.tag, None),))
            for rule, key in zip(rules.rules, rules.condition_keys, strict=True)
        ],
        defaults=[
            (
                f.name,
                Decision(
                    f.default, f.name, f"default.{f.name}", 1, default_reason(f.name, f.default)
                ),
            )
            for f in rules.families
            if f.default is not None
        ],
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one rule said of an order, for explaining it: whether its conditions hold
    (``matches``) and the tag it gave (``decision``; None when it gave none: its conditions
    fail, or an earlier rule took its exclusive family)."""

    rule_id: str
    version: int
    matches: bool
    decision: Decision | None
    tag: str | None  # the decision's tag, else the rule's fixed one


def explain(rules: RuleSet, facts: Mapping[str, Any]) -> list[Verdict]:
    """Every rule in order with its verdict on the order: a rule that names its tags from a
    fact gives a verdict per tag (``category`` for each category of the order's lines), and
    the family defaults given come last."""
    decisions = decide(rules, facts)
    given: dict[str, list[Decision]] = {}
    for decision in decisions:
        given.setdefault(decision.rule_id, []).append(decision)
    verdicts = []
    for rule in rules.rules:
        matches = all(c is None or c.holds(facts) for c in (rule.when, rule.holds_while))
        gave: list[Decision | None] = [*given.pop(rule.id, [])] or [None]
        for one in gave:
            tag = one.tag if one else rule.tag
            verdicts.append(Verdict(rule.id, rule.version, matches, one, tag))
    # what no rule of the set gave is a family's default
    verdicts += [
        Verdict(d.rule_id, d.rule_version, True, d, d.tag) for left in given.values() for d in left
    ]
    return verdicts


def merge_tags(
    current: list[AppliedTag],
    decisions: list[Decision],
    *,
    exclusive_families: set[str],
    max_tags: int,
    at: datetime,
) -> TagChange:
    """The order's new tag set: manual tags stay, rule tags follow the latest decisions.

    A manual tag beats any rule in its exclusive family (a person said "urgent": no rule makes it
    "regular"). Rule tags kept from before keep their original time, so re-applying the same
    event yields the same document. Past ``max_tags``, later rule tags are dropped and reported.
    """
    at = to_millisecond(at)  # what MongoDB's dates keep
    manual = [tag for tag in current if tag.source is TagSource.MANUAL]
    manual_names = {tag.name for tag in manual}
    manual_families = {tag.family for tag in manual if tag.family in exclusive_families}
    previous_rule_tags = {tag.name: tag for tag in current if tag.source is TagSource.RULE}

    room = max(max_tags - len(manual), 0)
    rule_tags: list[AppliedTag] = []
    dropped: list[Decision] = []
    for decision in decisions:
        if decision.tag in manual_names or decision.family in manual_families:
            continue
        if len(rule_tags) >= room:
            dropped.append(decision)
            continue
        before = previous_rule_tags.get(decision.tag)
        if before is not None and (before.rule_id, before.rule_version) == (
            decision.rule_id,
            decision.rule_version,
        ):
            rule_tags.append(before)
        else:
            rule_tags.append(decided_tag(decision, at))

    tags = manual + rule_tags
    if not current:  # a new order (most of them): it adds every tag and removes none
        return TagChange(tags=tags, added=list(tags), removed=[], dropped_by_limit=dropped)
    new_names = {tag.name for tag in tags}
    old_names = {tag.name for tag in current}
    return TagChange(
        tags=tags,
        added=[tag for tag in tags if tag.name not in old_names],
        removed=[tag for tag in current if tag.name not in new_names],
        dropped_by_limit=dropped,
    )


def decided_tag(decision: Decision, at: datetime) -> AppliedTag:
    """The tag a rule's decision gives, since ``at``. Not validated again: a decision's fields
    come from the validated rule set and the order's or customer's facts, cut to their fields'
    lengths (``_tags_of``, ``decide_customer``, ``render_reason``); validating it cost more
    than the rest of deciding it."""
    return built(
        AppliedTag,
        {
            "name": decision.tag,
            "family": decision.family,
            "source": TagSource.RULE,
            "rule_id": decision.rule_id,
            "rule_version": decision.rule_version,
            "by": None,
            "reason": decision.reason,
            "at": at,
        },
    )


def _tags_of(rule: Rule, facts: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if rule.tag is not None:
        yield rule.tag, None
        return
    assert rule.tag_from is not None
    raw = facts.get(rule.tag_from)
    for value in raw if isinstance(raw, list) else [raw]:
        if value is None or value == "":
            continue
        slug = tag_slug(str(value))
        if slug:
            yield f"{rule.tag_prefix}{slug}"[:64], value


@functools.lru_cache(maxsize=16_384)  # categories, provinces, channels: values repeat
def tag_slug(value: str) -> str:
    """A fact's value as a tag names it: lower case, runs of other characters than letters,
    digits, ``:``, ``.`` and ``-`` as one ``-`` (``product:`` + ``sofa-1`` for ``SOFA-1``)."""
    return _TAG_UNSAFE.sub("-", value.strip().lower()).strip("-")

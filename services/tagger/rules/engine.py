"""Deciding an order's tags from the rules, and merging them with the tags it already carries."""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.tagger.rules.schema import PLACEHOLDER, Rule, RuleSet
from shared.events import AppliedTag, TagSource

_TAG_UNSAFE = re.compile(r"[^\w:.-]+")  # keeps letters of any script: "category:家电"


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule's verdict that an order should carry a tag, and why."""

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
    return (rule.when is None or rule.when.holds(facts)) and (
        rule.holds_while is None or rule.holds_while.holds(facts)
    )


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
    decisions: list[Decision] = []
    seen_tags: set[str] = set()
    filled_families: set[str] = set()
    for rule, condition_key in zip(rules.rules, rules.condition_keys, strict=True):
        verdict = None if verdicts is None else verdicts.get(condition_key)
        if verdict is None:
            verdict = fires(rule, facts)
            if verdicts is not None:
                verdicts[condition_key] = verdict
        if not verdict:
            continue
        for tag, value in _tags_of(rule, facts):
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
    for default_family in rules.families:
        name, default = default_family.name, default_family.default
        if default is not None and name not in filled_families:
            decisions.append(
                Decision(default, name, f"default.{name}", 1, f"no {name} rule matched → {default}")
            )
    return decisions


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
            rule_tags.append(
                AppliedTag(
                    name=decision.tag,
                    family=decision.family,
                    source=TagSource.RULE,
                    rule_id=decision.rule_id,
                    rule_version=decision.rule_version,
                    reason=decision.reason,
                    at=at,
                )
            )

    tags = manual + rule_tags
    new_names = {tag.name for tag in tags}
    old_names = {tag.name for tag in current}
    return TagChange(
        tags=tags,
        added=[tag for tag in tags if tag.name not in old_names],
        removed=[tag for tag in current if tag.name not in new_names],
        dropped_by_limit=dropped,
    )


def render_reason(template: str, facts: Mapping[str, Any], value: Any = None) -> str:
    """``"{shipping.method} shipping → urgent"`` with the order's facts filled in."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        found = value if name == "value" else facts.get(name)
        if found is None:
            return "—"
        if isinstance(found, Decimal):
            return f"{found:.2f}"
        if isinstance(found, float):
            return f"{found:.1f}"
        return str(found)

    return PLACEHOLDER.sub(fill, template)[:500]


def _tags_of(rule: Rule, facts: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if rule.tag is not None:
        yield rule.tag, None
        return
    assert rule.tag_from is not None
    raw = facts.get(rule.tag_from)
    for value in raw if isinstance(raw, list) else [raw]:
        if value is None or value == "":
            continue
        slug = _TAG_UNSAFE.sub("-", str(value).strip().lower()).strip("-")
        if slug:
            yield f"{rule.tag_prefix}{slug}"[:64], value

"""Deciding a customer's tags from the customer rules (pure; the schema: ``customer_rules.py``)."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from services.tagger.rules.customer_rules import CustomerRule, lower_bounded
from services.tagger.rules.engine import _TAG_UNSAFE, Decision
from services.tagger.rules.reason_values import is_whole_days
from services.tagger.rules.reasons import render_reason
from services.tagger.rules.schema import PLACEHOLDER


def decide_customer(
    rules: Sequence[CustomerRule],
    facts: Mapping[str, Any],
    items: Mapping[str, list[dict[str, Any]]],
    *,
    family_of: Mapping[str, str | None],
    exclusive: set[str],
) -> list[Decision]:
    """Every tag the customer rules give, in rule order; first rule wins an exclusive family.

    ``items`` holds, per ``each`` kind, one fact mapping per category or product; ``family_of``
    maps catalog tags to their family."""
    decisions: list[Decision] = []
    seen: set[str] = set()
    filled: set[str] = set()
    # one scope per item, built once for every rule of its kind
    scopes_of: dict[str, list[Mapping[str, Any]]] = {}
    for rule in rules:
        if rule.each is None:
            scopes = [facts]
        elif rule.each in scopes_of:
            scopes = scopes_of[rule.each]
        else:
            scopes = scopes_of[rule.each] = [{**facts, **item} for item in items[rule.each]]
        for scope in scopes:
            if rule.when is not None and not rule.when.predicate(scope):  # compiled once
                continue
            raw = scope.get(rule.tag_from) if rule.tag_from else None
            if rule.tag is not None:
                tag = rule.tag
            elif raw is None or raw == "":
                continue
            else:
                slug = _TAG_UNSAFE.sub("-", str(raw).strip().lower()).strip("-")
                if not slug:
                    continue
                tag = f"{rule.tag_prefix}{slug}"[:64]
            family = rule.family or family_of.get(tag)
            if tag in seen or (family in exclusive and family in filled):
                continue
            seen.add(tag)
            if family is not None:
                filled.add(family)
            reason = render_reason(rule.reason, in_whole_days(rule, scope), raw)
            decisions.append(Decision(tag, family, rule.id, rule.version, reason))
    return decisions


def in_whole_days(rule: CustomerRule, scope: Mapping[str, Any]) -> Mapping[str, Any]:
    """The facts as the rule's reason shows them: a number of days in whole days, as people
    count them (``days_since_*``, ``sku.days_after_first_sale``; rules test the exact time).
    Rounded up where the rule tests the fact against a lower bound, so the reason stays true
    of it ("> 90" at 90.3 days reads 91), down otherwise (days elapsed: "first order 0 days
    ago" an hour after it)."""
    rounding = _day_rounding(rule)
    if not rounding:
        return scope
    whole = dict(scope)
    for name, up in rounding:
        value = scope.get(name)
        if isinstance(value, float) and math.isfinite(value):
            whole[name] = math.ceil(value) if up else math.floor(value)
    return whole


# per rule (rules are frozen; a reload makes new ones): its reason's day facts, each with
# whether it rounds up. Worked out once, not per decision (~1 µs a decision otherwise)
_ROUNDING: dict[int, tuple[CustomerRule, tuple[tuple[str, bool], ...]]] = {}


def _day_rounding(rule: CustomerRule) -> tuple[tuple[str, bool], ...]:
    kept = _ROUNDING.get(id(rule))
    if kept is not None and kept[0] is rule:
        return kept[1]
    lower = lower_bounded(rule.when)
    rounding = tuple(
        (name, name in lower) for name in PLACEHOLDER.findall(rule.reason) if is_whole_days(name)
    )
    if len(_ROUNDING) > 1_000:
        _ROUNDING.clear()
    _ROUNDING[id(rule)] = (rule, rounding)
    return rounding

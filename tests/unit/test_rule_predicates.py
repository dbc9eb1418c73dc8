"""Compiled conditions and reason rendering give exactly the answers of the rule language's
reference evaluation (``holds``, the regex substitution), over every kind of fact value."""

import itertools
import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.tagger.rules.conditions import Condition
from services.tagger.rules.reasons import fill_reason, render_reason
from services.tagger.rules.schema import PLACEHOLDER, Rule, load_rules
from services.tagger.settings import DEFAULT_RULES_FILE

condition_adapter: TypeAdapter[Any] = TypeAdapter(Condition)

# fact values of every kind a fact takes, and the awkward ones around them
VALUES: list[Any] = [
    None,
    "",
    [],
    "express",
    "EXPRESS",
    "Express delivery",
    "加急 please",
    "5000",
    "5000.00",
    "abc",
    "true",
    True,
    False,
    0,
    1,
    24,
    5000,
    24.0,
    23.999,
    24.0001,
    0.1,
    Decimal("0"),
    Decimal("1"),
    Decimal("4999.99"),
    Decimal("5000"),
    Decimal("5000.00"),
    Decimal("5000.01"),
    ["express", "books"],
    ["EXPRESS"],
    ["books", 5000],
    [True],
    ["rush order"],
]

OPERANDS: dict[str, list[Any]] = {
    "eq": ["express", "Express", "5000", 5000, 5000.0, Decimal("5000"), True, False, 0, 1, "true"],
    "in": [
        ["express", "same_day"],
        ["EXPRESS"],
        [5000, "abc"],
        [True, "x"],
        [1, 0.1],
        ["5000"],
        ["true"],
    ],
    "contains": ["rush", "RUSH", ["urgent", "加急"], ["express"], "500", ["books", "5000"]],
    "gte": [Decimal("5000"), Decimal("24"), Decimal("0")],
    "between": [(Decimal("1"), Decimal("24")), (Decimal("0"), Decimal("0.1"))],
    "exists": [True, False],
}


def fact_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for operator, operands in OPERANDS.items():
        names = {"eq": ["eq", "ne"], "in": ["in", "not_in"], "gte": ["gt", "gte", "lt", "lte"]}
        for name, operand in itertools.product(names.get(operator, [operator]), operands):
            tests.append({"fact": "notes", name: operand})
    return tests


def default_conditions() -> list[Any]:
    rules = load_rules(DEFAULT_RULES_FILE)
    conditions = [c for rule in rules.rules for c in (rule.when, rule.holds_while) if c]
    return conditions + [c.when for c in rules.customer_rules if c.when is not None]


@pytest.mark.parametrize("test", fact_tests(), ids=str)
def test_a_compiled_fact_test_answers_as_holds_for_every_value(test: dict[str, Any]) -> None:
    condition = condition_adapter.validate_python(test)
    for value in VALUES:
        facts = {"notes": value}
        assert condition.predicate(facts) is condition.holds(facts), (test, value)


def test_combinations_and_default_rules_compile_to_the_same_verdicts() -> None:
    combined = condition_adapter.validate_python(
        {
            "all": [
                {"any": [{"fact": "notes", "contains": "rush"}, {"fact": "amount", "gte": 5000}]},
                {"not": {"fact": "status", "in": ["shipped"]}},
                {"orders_within_minutes": 10, "at_least": 2},
            ]
        }
    )
    conditions = [combined, *default_conditions()]
    names = {name for c in conditions for name in _facts_of(c)}
    for condition in conditions:
        for value in VALUES:
            facts: dict[str, Any] = dict.fromkeys(names, value)
            facts |= {"_created_at": 1_000.0, "_recent_order_times": (950.0, 10.0)}
            assert condition.predicate(facts) is condition.holds(facts), (condition, value)


def test_a_rule_applies_when_both_its_conditions_hold() -> None:
    rule = Rule.model_validate(
        {
            "id": "r",
            "version": 1,
            "tag": "urgent",
            "when": {"fact": "amount", "gte": 10},
            "holds_while": {"fact": "status", "in": ["pending"]},
            "reason": "x",
        }
    )
    assert rule.applies({"amount": Decimal("10"), "status": "pending"})
    assert not rule.applies({"amount": Decimal("10"), "status": "shipped"})
    assert not rule.applies({"amount": Decimal("9"), "status": "pending"})


@pytest.mark.parametrize(
    "template",
    [
        "no placeholder → urgent",
        "{shipping.method} shipping → urgent",
        "VIP order of {amount} {currency} → urgent",
        "{value}{value} and {hours_to_requested_delivery} h{customer.vip}",
        "{unknown.fact} at the end: {amount}",
        "x" * 490 + "{amount}",
    ],
)
def test_a_reason_renders_as_the_placeholder_substitution(template: str) -> None:
    for value, number in itertools.product(VALUES, [Decimal("12.5"), 3.25, 7, None, True]):
        facts = {
            "shipping.method": value,
            "amount": number,
            "currency": "CNY",
            "hours_to_requested_delivery": number,
            "customer.vip": value,
        }
        assert render_reason(template, facts, value) == _substituted(template, facts, value)


def _substituted(template: str, facts: dict[str, Any], value: Any) -> str:
    """The reference rendering: every placeholder replaced by regex substitution."""

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


def _facts_of(condition: Any) -> set[str]:
    if hasattr(condition, "fact"):
        return {condition.fact}
    children = getattr(condition, "all", None) or getattr(condition, "any", None) or []
    if hasattr(condition, "not_"):
        children = [condition.not_]
    return {name for child in children for name in _facts_of(child)}


COMPARISONS = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


@pytest.mark.parametrize("value", [0, 1, 24, 5000, -3, 10**30, 23.999, 0.1, 24.0])
@pytest.mark.parametrize(
    "operand", [Decimal("0"), Decimal("24"), Decimal("0.1"), Decimal("5000.00")]
)
@pytest.mark.parametrize("operator", sorted(COMPARISONS))
def test_a_number_compares_as_the_decimal_it_prints_as(
    value: int | float, operand: Decimal, operator: str
) -> None:
    condition = condition_adapter.validate_python({"fact": "amount", operator: operand})
    expected = COMPARISONS[operator](Decimal(str(value)), operand)

    assert condition.holds({"amount": value}) is expected
    assert condition.predicate({"amount": value}) is expected


@pytest.mark.parametrize(
    "template",
    [
        "no placeholder → urgent",
        "{shipping.method} shipping → urgent",
        "{value}{value} and {hours_to_requested_delivery} h{customer.vip}",
        "已下 {orders_total} 单 → 回头客",
        "x" * 490 + "{amount}",
    ],
)
def test_a_reason_filled_from_values_is_the_placeholder_substitution(template: str) -> None:
    count = len(PLACEHOLDER.findall(template))
    for args in itertools.product(["", "12.5", "{amount}", "a\\1 b", "北京"], repeat=count):
        assert fill_reason(template, list(args)) == _filled_by_substitution(template, args)


def _filled_by_substitution(template: str, args: tuple[str, ...]) -> str:
    """The reference: each placeholder replaced in turn by regex substitution."""
    values = iter(args)
    return PLACEHOLDER.sub(lambda _: next(values), template)[:500]


def test_a_reason_filled_from_too_few_or_too_many_values_is_refused() -> None:
    with pytest.raises(ValueError, match="has 2 placeholders, got 1 values"):
        fill_reason("{a} and {b}", ["1"])
    with pytest.raises(ValueError, match="has 1 placeholders, got 2 values"):
        fill_reason("{a}", ["1", "2"])

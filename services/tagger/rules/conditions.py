"""Conditions of the rule language and their evaluation over facts.

A condition is one of:
- a test of one fact: ``{fact: amount, gte: 5000}``; operators ``eq ne gt gte lt lte in not_in
  contains between exists`` (exactly one per test);
- a time window over the customer's orders: ``{orders_within_minutes: 10, at_least: 5}``
  (this order and the earlier ones created in the 10 minutes up to it);
- a combination: ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}``.
"""

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from services.tagger.rules.customer_facts import CUSTOMER_FACT_NAMES, ITEM_FACT_NAMES
from services.tagger.rules.facts import FACT_NAMES

# order facts and customer facts: which of them a rule may name is checked by its kind of rule
KNOWN_FACTS = {
    *FACT_NAMES,
    *CUSTOMER_FACT_NAMES,
    *(name for names in ITEM_FACT_NAMES.values() for name in names),
}

Scalar = str | int | float | Decimal | bool
# A condition compiled once per rule set: the same verdict as ``holds``, without re-reading
# which operator the test has and re-converting its operands for every order.
Predicate = Callable[[Mapping[str, Any]], bool]


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FactTest(_Condition):
    fact: str
    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: Decimal | None = None
    gte: Decimal | None = None
    lt: Decimal | None = None
    lte: Decimal | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    contains: str | list[str] | None = None
    between: tuple[Decimal, Decimal] | None = None
    exists: bool | None = None

    @field_validator("fact")
    @classmethod
    def _known_fact(cls, name: str) -> str:
        if name not in KNOWN_FACTS:
            raise ValueError(f"unknown fact {name!r}; known facts: {', '.join(sorted(FACT_NAMES))}")
        return name

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> "FactTest":
        operators = [name for name in _OPERATORS if getattr(self, name) is not None]
        if len(operators) != 1:
            raise ValueError(
                f"a test of {self.fact!r} needs exactly one operator of "
                f"{', '.join(o.rstrip('_') for o in _OPERATORS)}; got {len(operators)}"
            )
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between for {self.fact!r}: the lower bound exceeds the upper")
        return self

    def holds(self, facts: Mapping[str, Any]) -> bool:
        value = facts.get(self.fact)
        if self.exists is not None:
            return (value is not None and value != "" and value != []) == self.exists
        if value is None:
            return False
        if self.eq is not None:
            return _same(value, self.eq)
        if self.ne is not None:
            return not _same(value, self.ne)
        if self.in_ is not None:
            return _any_member(value, self.in_)
        if self.not_in is not None:
            return not _any_member(value, self.not_in)
        if self.contains is not None:
            return _contains(value, self.contains)
        number = _number(value)
        if number is None:
            return False
        if self.between is not None:
            return self.between[0] <= number <= self.between[1]
        return (
            (self.gt is None or number > self.gt)
            and (self.gte is None or number >= self.gte)
            and (self.lt is None or number < self.lt)
            and (self.lte is None or number <= self.lte)
        )

    @cached_property
    def predicate(self) -> Predicate:
        """``holds`` for the one operator this test has, its operands prepared once."""
        name = self.fact
        if self.exists is not None:
            wanted = self.exists
            return lambda facts: _present(facts.get(name)) == wanted
        if self.eq is not None or self.ne is not None:
            same = _sameness(self.eq if self.eq is not None else self.ne)  # type: ignore[arg-type]
            if self.eq is not None:
                return lambda facts: (value := facts.get(name)) is not None and same(value)
            return lambda facts: (value := facts.get(name)) is not None and not same(value)
        if self.in_ is not None or self.not_in is not None:
            member = _membership(self.in_ if self.in_ is not None else self.not_in)  # type: ignore[arg-type]
            if self.in_ is not None:
                return lambda facts: (value := facts.get(name)) is not None and member(value)
            return lambda facts: (value := facts.get(name)) is not None and not member(value)
        if self.contains is not None:
            contained = _containment(self.contains)
            return lambda facts: (value := facts.get(name)) is not None and contained(value)
        if self.between is not None:
            low, high = self.between
            return lambda facts: (n := _number(facts.get(name))) is not None and low <= n <= high
        bound = _bound(self.gt, self.gte, self.lt, self.lte)
        return lambda facts: (n := _number(facts.get(name))) is not None and bound(n)


_OPERATORS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in_",
    "not_in",
    "contains",
    "between",
    "exists",
)


class OrdersWithin(_Condition):
    """Velocity: at least N of the customer's orders (this one included) within M minutes."""

    orders_within_minutes: int = Field(gt=0, le=60 * 24 * 30)
    at_least: int = Field(ge=2, le=10_000)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        now: float = facts["_created_at"]
        start = now - self.orders_within_minutes * 60
        earlier = sum(1 for t in facts["_recent_order_times"] if start <= t <= now)
        return earlier + 1 >= self.at_least

    @cached_property
    def predicate(self) -> Predicate:
        return self.holds


class AllOf(_Condition):
    all: list["Condition"] = Field(min_length=1)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return all(condition.holds(facts) for condition in self.all)

    @cached_property
    def predicate(self) -> Predicate:
        parts = tuple(condition.predicate for condition in self.all)

        def every(facts: Mapping[str, Any]) -> bool:
            for part in parts:  # noqa: SIM110 (a loop: a quarter of all() over a generator)
                if not part(facts):
                    return False
            return True

        return every


class AnyOf(_Condition):
    any: list["Condition"] = Field(min_length=1)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return any(condition.holds(facts) for condition in self.any)

    @cached_property
    def predicate(self) -> Predicate:
        parts = tuple(condition.predicate for condition in self.any)

        def some(facts: Mapping[str, Any]) -> bool:
            for part in parts:  # noqa: SIM110 (as AllOf)
                if part(facts):
                    return True
            return False

        return some


class Not(_Condition):
    not_: "Condition" = Field(alias="not")

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return not self.not_.holds(facts)

    @cached_property
    def predicate(self) -> Predicate:
        inner = self.not_.predicate
        return lambda facts: not inner(facts)


def _condition_kind(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        return type(data).__name__
    if not isinstance(data, dict):
        return None
    for key, kind in (
        ("all", "AllOf"),
        ("any", "AnyOf"),
        ("not", "Not"),
        ("orders_within_minutes", "OrdersWithin"),
        ("fact", "FactTest"),
    ):
        if key in data:
            return kind
    return None


Condition = Annotated[
    Annotated[FactTest, Tag("FactTest")]
    | Annotated[OrdersWithin, Tag("OrdersWithin")]
    | Annotated[AllOf, Tag("AllOf")]
    | Annotated[AnyOf, Tag("AnyOf")]
    | Annotated[Not, Tag("Not")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message="a condition needs one of: fact, orders_within_minutes, all, any, not",
    ),
]

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def _same(value: Any, expected: Scalar) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected or value == expected
    left, right = _number(value), _number(expected)
    if left is not None and right is not None:
        return left == right
    return str(value).lower() == str(expected).lower()


def _any_member(value: Any, members: Sequence[Scalar]) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_same(v, m) for v in values for m in members)


def _contains(value: Any, needles: str | list[str]) -> bool:
    wanted = [needles] if isinstance(needles, str) else needles
    if isinstance(value, list):
        return _any_member(value, wanted)
    text = str(value).casefold()
    return any(needle.casefold() in text for needle in wanted)


def _number(value: Any) -> Decimal | int | None:
    """A fact as a number to compare: a float as the decimal it prints as (0.1 is 0.1), an
    int as it is (Python compares ints and Decimals exactly; converting each cost a tenth of
    the rule engine)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return None


# The compiled forms of the helpers above: the same answers, operands prepared once.


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _sameness(expected: Scalar) -> Callable[[Any], bool]:
    """``lambda value: _same(value, expected)``."""
    if isinstance(expected, bool):
        return lambda value: value is expected or value == expected
    number = _number(expected)
    lowered = str(expected).lower()

    def same(value: Any) -> bool:
        if isinstance(value, bool):
            return value is expected or value == expected
        if number is not None:
            left = _number(value)
            if left is not None:
                return left == number
        return str(value).lower() == lowered

    return same


def _membership(members: Sequence[Scalar]) -> Callable[[Any], bool]:
    """``lambda value: _any_member(value, members)``; text members as one set lookup."""
    if all(isinstance(member, str) for member in members):
        lowered = frozenset(str(member).lower() for member in members)

        def one(value: Any) -> bool:  # a bool is never the same as text; the rest by text
            return not isinstance(value, bool) and str(value).lower() in lowered

    else:
        samers = tuple(_sameness(member) for member in members)

        def one(value: Any) -> bool:
            return any(same(value) for same in samers)

    def member(value: Any) -> bool:
        if isinstance(value, list):
            return any(one(v) for v in value)
        return one(value)

    return member


def _containment(needles: str | list[str]) -> Callable[[Any], bool]:
    """``lambda value: _contains(value, needles)``."""
    wanted = [needles] if isinstance(needles, str) else needles
    in_list = _membership(wanted)
    folded = tuple(needle.casefold() for needle in wanted)

    def contained(value: Any) -> bool:
        if isinstance(value, list):
            return in_list(value)
        text = str(value).casefold()
        return any(needle in text for needle in folded)

    return contained


def _bound(
    gt: Decimal | None, gte: Decimal | None, lt: Decimal | None, lte: Decimal | None
) -> Callable[[Decimal | int], bool]:
    """The comparison of a test with one of gt, gte, lt, lte."""
    if gt is not None:
        return lambda number: number > gt
    if gte is not None:
        return lambda number: number >= gte
    if lt is not None:
        return lambda number: number < lt
    assert lte is not None
    return lambda number: number <= lte

"""Customer rules: declarative rules over a customer's live figures, in the same rule file.

A customer rule reads like an order rule (``id``, ``version``, ``tag`` or ``tag_from``,
``when``, ``reason``) but tests the facts of ``customer_facts.py``. With ``each: category`` or
``each: sku`` its condition is tested once per category or product the customer bought, with
that item's facts added (``prefers:home-goods`` from ``tag_from: category``). Evaluation is in
``customer_engine.py``.
"""

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.tagger.rules.conditions import AllOf, AnyOf, Condition, FactTest, Not, OrdersWithin
from services.tagger.rules.customer_facts import CUSTOMER_FACT_NAMES, ITEM_FACT_NAMES

TAG_NAME = r"^[a-z0-9][a-z0-9:_.-]{0,63}$"
PLACEHOLDER_NAME = r"\{([a-z0-9_.]+)\}"
Each = Literal["category", "sku"]
# schema.Language (schema imports this module, so it is spelled here too)
ReasonLanguage = Literal["zh-CN", "en"]


def facts_named(condition: Any) -> Iterator[str]:
    """Every fact a condition tests (``orders_within_minutes`` tests order times: ``None``)."""
    if isinstance(condition, FactTest):
        yield condition.fact
    elif isinstance(condition, OrdersWithin):
        yield "orders_within_minutes"
    elif isinstance(condition, AllOf):
        for part in condition.all:
            yield from facts_named(part)
    elif isinstance(condition, AnyOf):
        for part in condition.any:
            yield from facts_named(part)
    elif isinstance(condition, Not):
        yield from facts_named(condition.not_)


def lower_bounded(condition: Any) -> set[str]:
    """The facts a condition tests with ``gt`` or ``gte`` (a reason shows their days rounded
    up, so it stays true of its rule)."""
    if isinstance(condition, FactTest):
        return {condition.fact} if condition.gt is not None or condition.gte is not None else set()
    if isinstance(condition, AllOf | AnyOf):
        parts = condition.all if isinstance(condition, AllOf) else condition.any
        return set().union(*(lower_bounded(part) for part in parts))
    if isinstance(condition, Not):
        return lower_bounded(condition.not_)
    return set()


def known_names(each: Each | None) -> dict[str, str]:
    return {**CUSTOMER_FACT_NAMES, **(ITEM_FACT_NAMES[each] if each else {})}


class CustomerRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    description: str = ""
    each: Each | None = None
    tag: str | None = Field(default=None, pattern=TAG_NAME)
    tag_from: str | None = None
    tag_prefix: str = Field(default="", pattern=r"^[a-z0-9:_.-]{0,32}$")
    family: str | None = None
    when: Condition | None = None
    reason: str = Field(min_length=1, max_length=300)
    # the reason in other languages, with the reason's placeholders in the same order (the
    # customer page shows a stored reason in the reader's language), as order rules have
    reasons: dict[ReasonLanguage, Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _consistent(self) -> "CustomerRule":
        names = known_names(self.each)
        if (self.tag is None) == (self.tag_from is None):
            raise ValueError("give exactly one of tag (a fixed tag) or tag_from (a fact)")
        if self.tag_from is not None and self.tag_from not in names:
            raise ValueError(f"tag_from names unknown customer fact {self.tag_from!r}")
        if self.tag is not None and self.when is None:
            raise ValueError("a rule with a fixed tag needs a when condition")
        for name in facts_named(self.when):
            if name not in names:
                where = f" (with each: {self.each})" if self.each else ""
                raise ValueError(
                    f"when names {name!r}, not a customer fact{where}; "
                    f"known: {', '.join(sorted(names))}"
                )
        for name in re.findall(PLACEHOLDER_NAME, self.reason):
            if name != "value" and name not in names:
                raise ValueError(f"reason names unknown customer fact {{{name}}}")
        placeholders = re.findall(PLACEHOLDER_NAME, self.reason)
        for language, text in self.reasons.items():
            if re.findall(PLACEHOLDER_NAME, text) != placeholders:
                raise ValueError(
                    f"reasons.{language} must use the reason's placeholders in the same order:"
                    f" {', '.join('{' + p + '}' for p in placeholders) or 'none'}"
                )
        return self

"""The rule file: tag families, the tag catalog and the rules, validated as a whole at load.

See docs/rules.md for the format. A file that does not validate is refused with the rule id,
the field and the problem; the running tagger then keeps its last good rule set.
"""

import json
import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from services.tagger.rules.conditions import Condition, Predicate
from services.tagger.rules.customer_rules import CustomerRule, facts_named
from services.tagger.rules.facts import FACT_NAMES

# A tag's stable key in APIs, events and filters: lowercase ASCII or Chinese (Han) characters.
# Only these two scripts: no Cyrillic or Greek look-alikes, no control or invisible characters,
# nothing that changes under NFKC (input is NFKC-normalised before it is checked).
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff"  # escaped: the same in Python, Rust and ECMA regexes
TAG_NAME = rf"^[a-z0-9{_HAN}][a-z0-9:_.{_HAN}-]{{0,63}}$"
LANGUAGES = ("zh-CN", "en")
ROLES = ("viewer", "agent", "manager", "admin")
Language = Literal["zh-CN", "en"]
StaffRole = Literal["viewer", "agent", "manager", "admin"]

# A display label: any script, one line, no control or invisible formatting characters (bidi
# overrides, zero-width spaces) and no space at either end.
_INVISIBLE = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
_SPACE = r" \xa0\u3000"
LABEL = rf"^[^{_INVISIBLE}{_SPACE}](?:[^{_INVISIBLE}]*[^{_INVISIBLE}{_SPACE}])?$"
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=LABEL)]
PLACEHOLDER = re.compile(r"\{([a-z0-9_.]+)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TagPermissions(_Strict):
    """Who may add or remove a tag by hand (admins always may), and whether a tag a rule gave
    may be removed by hand at all (the next event would otherwise bring it back unnoticed)."""

    add: tuple[StaffRole, ...] = ("agent", "manager", "admin")
    remove: tuple[StaffRole, ...] = ("agent", "manager", "admin")
    remove_rule_given: bool = False


class Family(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    exclusive: bool = False
    default: str | None = Field(default=None, pattern=TAG_NAME)
    description: str = ""
    permissions: TagPermissions | None = None  # for every tag of the family without its own
    # The family that says who the customer is: an order's tagged event names the first of its
    # tags (in catalog order) as the customer's tier, which alert routing and wording read.
    tier: bool = False


class CatalogTag(_Strict):
    name: str = Field(pattern=TAG_NAME)
    family: str | None = None
    description: str = ""
    colour: str = Field(default="#6b7280", pattern=r"^#[0-9a-fA-F]{6}$")
    active: bool = True
    labels: dict[Language, Label] = Field(default_factory=dict)
    permissions: TagPermissions | None = None  # None: the family's, else the defaults


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    description: str = ""
    tag: str | None = Field(default=None, pattern=TAG_NAME)
    tag_from: str | None = None
    tag_prefix: str = Field(default="", pattern=r"^[a-z0-9:_.-]{0,32}$")
    family: str | None = None
    when: Condition | None = None
    holds_while: Condition | None = None
    reason: str = Field(min_length=1, max_length=300)
    # the reason in other languages: the same placeholders in the same order (a stored tag
    # keeps only their values, and is shown in the reader's language)
    reasons: dict[Language, Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _one_tag_source(self) -> "Rule":
        if (self.tag is None) == (self.tag_from is None):
            raise ValueError("give exactly one of tag (a fixed tag) or tag_from (a fact)")
        if self.tag_from is not None and self.tag_from not in FACT_NAMES:
            raise ValueError(f"tag_from names unknown fact {self.tag_from!r}")
        if self.tag is not None and self.when is None:
            raise ValueError("a rule with a fixed tag needs a when condition")
        for name in PLACEHOLDER.findall(self.reason):
            if name != "value" and name not in FACT_NAMES:
                raise ValueError(f"reason names unknown fact {{{name}}}")
        placeholders = PLACEHOLDER.findall(self.reason)
        for language, text in self.reasons.items():
            if PLACEHOLDER.findall(text) != placeholders:
                raise ValueError(
                    f"reasons.{language} must use the reason's placeholders in the same order:"
                    f" {', '.join('{' + p + '}' for p in placeholders) or 'none'}"
                )
        return self

    @cached_property
    def applies(self) -> Predicate:
        """Whether the rule's conditions hold for an order's facts, compiled once."""
        when = None if self.when is None else self.when.predicate
        holds_while = None if self.holds_while is None else self.holds_while.predicate
        if when is None and holds_while is None:
            return lambda facts: True
        if holds_while is None:
            return when  # type: ignore[return-value]
        if when is None:
            return holds_while
        return lambda facts: when(facts) and holds_while(facts)


class RuleSet(_Strict):
    families: list[Family] = Field(default_factory=list)
    tags: list[CatalogTag] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list, max_length=10_000)
    customer_rules: list[CustomerRule] = Field(default_factory=list, max_length=1_000)

    @model_validator(mode="after")
    def _consistent(self) -> "RuleSet":
        families = {family.name for family in self.families}
        catalog = {tag.name: tag for tag in self.tags}
        _unique("family", [f.name for f in self.families])
        _unique("tag", [t.name for t in self.tags])
        _unique("rule id", [r.id for r in self.rules])
        for tag in self.tags:
            if tag.family is not None and tag.family not in families:
                raise ValueError(f"tag {tag.name!r}: unknown family {tag.family!r}")
        for family in self.families:
            if family.default is not None and family.default not in catalog:
                raise ValueError(
                    f"family {family.name!r}: default tag {family.default!r} is not in tags"
                )
        for rule in self.rules:
            if rule.tag is not None and rule.tag not in catalog:
                raise ValueError(f"rule {rule.id!r}: tag {rule.tag!r} is not in the tag catalog")
            if rule.family is not None and rule.family not in families:
                raise ValueError(f"rule {rule.id!r}: unknown family {rule.family!r}")
            for condition in (rule.when, rule.holds_while):
                for name in facts_named(condition):
                    if name not in FACT_NAMES and name != "orders_within_minutes":
                        raise ValueError(
                            f"rule {rule.id!r}: {name!r} is a customer fact; "
                            "test it in customer_rules"
                        )
        _unique("customer rule id", [r.id for r in self.customer_rules])
        for customer_rule in self.customer_rules:
            where = f"customer rule {customer_rule.id!r}"
            if customer_rule.tag is not None and customer_rule.tag not in catalog:
                raise ValueError(f"{where}: tag {customer_rule.tag!r} is not in the tag catalog")
            if customer_rule.family is not None and customer_rule.family not in families:
                raise ValueError(f"{where}: unknown family {customer_rule.family!r}")
        return self

    def family_of(self, tag: str, rule: Rule | None = None) -> str | None:
        if rule is not None and rule.family is not None:
            return rule.family
        entry = self.catalog.get(tag)
        return entry.family if entry else None

    # computed once per rule set: they are read for every rule that fires
    @cached_property
    def catalog(self) -> dict[str, CatalogTag]:
        return {tag.name: tag for tag in self.tags}

    @cached_property
    def tag_families(self) -> dict[str, str | None]:
        """Each catalog tag's family (a customer's evaluation reads it for every rule)."""
        return {name: tag.family for name, tag in self.catalog.items()}

    @cached_property
    def condition_keys(self) -> list[str]:
        """Per rule, a key equal for rules whose conditions are equal (in any rule set): the
        verdict cache of ``engine.decide`` when two rule sets are compared."""
        return [
            json.dumps(
                rule.model_dump(mode="json", include={"when", "holds_while"}, by_alias=True),
                sort_keys=True,
            )
            for rule in self.rules
        ]

    @cached_property
    def exclusive_families(self) -> set[str]:
        return {family.name for family in self.families if family.exclusive}

    @cached_property
    def customer_tiers(self) -> tuple[str, ...]:
        """The tags of the tier families, highest first (catalog order)."""
        tier_families = {family.name for family in self.families if family.tier}
        return tuple(tag.name for tag in self.tags if tag.family in tier_families)


class RuleFileError(ValueError):
    """The rule file is not valid; the message names the rule id, the field and the problem.
    ``problems`` has them one by one: (where, e.g. "rule fast, field when.fact", problem)."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [("file", message)]


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}")
        seen.add(name)


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RuleFileError(
            f"{source}: not valid YAML: {error}", [("file", f"not valid YAML: {error}")]
        ) from error
    if not isinstance(data, dict):
        problem = "expected a mapping with families, tags and rules"
        raise RuleFileError(f"{source}: {problem}", [("file", problem)])
    try:
        return RuleSet.model_validate(data)
    except ValidationError as error:
        problems = [_describe(e, data) for e in error.errors()]
        raise RuleFileError(
            f"{source}: " + "; ".join(f"{where}: {problem}" for where, problem in problems),
            problems,
        ) from None


def load_rules(path: Path) -> RuleSet:
    return parse_rules(path.read_text(encoding="utf-8"), str(path))


def _describe(error: Any, data: dict[str, Any]) -> tuple[str, str]:
    location = list(error["loc"])
    where = ".".join(str(part) for part in location) or "file"
    if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
        rules = data.get("rules") or []
        rule_id = (
            rules[location[1]].get("id")
            if location[1] < len(rules) and isinstance(rules[location[1]], dict)
            else None
        )
        field = ".".join(str(part) for part in location[2:] if not _is_union_tag(part)) or "rule"
        where = f"rule {rule_id or '#' + str(location[1])}, field {field}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return where, message


def _is_union_tag(part: Any) -> bool:
    return part in {"FactTest", "OrdersWithin", "AllOf", "AnyOf", "Not"}


T = TypeVar("T")


def once_per_rule_set(
    cache: dict[int, tuple[RuleSet, T]], rules: RuleSet, build: Callable[[RuleSet], T]
) -> T:
    """What ``build`` makes of a rule set, made once per rule set (a reload makes it again;
    the rule set kept beside it tells a reused ``id`` apart)."""
    cached = cache.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    if len(cache) > 16:
        cache.clear()
    made = build(rules)
    cache[id(rules)] = (rules, made)
    return made

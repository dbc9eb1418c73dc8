"""Every tag the rules can set, as catalog entries: the rule file's own tags are seeded into
the catalog; these are the tags a rule names from a fact (``tag_from`` with a ``tag_prefix``:
``status:pending``, ``region:east-china``, ``category:beauty``, ``prefers:beauty``), so the
Tags page lists them and each can be given names.

A fact with a known set of values (status, region) gives all of them; one whose values come
from the data (categories) gives the values in use (tags some order or customer carries); one
per product (``product:<sku>``) none. Pure: the caller says which tags are in use.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.tagger.builtin_labels import builtin_labels_of
from services.tagger.rules.customer_rules import CustomerRule
from services.tagger.rules.regions import REGION_BY_PROVINCE
from services.tagger.rules.schema import TAG_NAME, CatalogTag, Rule, RuleSet
from shared.models import OrderStatus

# facts whose every value is known ahead: their tags are listed before any order carries one
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "status": tuple(status.value for status in OrderStatus),
    "region": tuple(sorted(set(REGION_BY_PROVINCE.values()))),
}
_TAG_NAME = re.compile(TAG_NAME)
# facts of one item of an order, one value per product: their tags (``product:<sku>``) are not
# listed, or every tag picker would hold one entry per SKU sold
NOT_LISTED_FACTS = frozenset({"sku"})


@dataclass(frozen=True, slots=True)
class NamedFrom:
    """A rule that names its tag from a fact: the prefix, and the family its tags are in."""

    prefix: str
    fact: str
    family: str | None
    rule_id: str


def named_from(rules: RuleSet) -> list[NamedFrom]:
    """The order and customer rules that name their tag from a fact, with a prefix (without
    one, nothing tells their tags from any other)."""
    listed: list[Rule | CustomerRule] = [*rules.rules, *rules.customer_rules]
    return [
        NamedFrom(rule.tag_prefix, rule.tag_from, rule.family, rule.id)
        for rule in listed
        if rule.tag_from is not None and rule.tag_prefix
    ]


def fact_prefixes(rules: RuleSet) -> list[str]:
    """The name prefixes of the tags rules name from facts (``status:``, ``prefers:``), sorted:
    a person may not add a tag under one by hand, stored or not (``manual.check_tags``)."""
    return sorted({rule.prefix for rule in named_from(rules)})


def _gives(rule: Rule | CustomerRule, name: str) -> bool:
    """Whether the rule gives the tag: by name, or named from a fact by its prefix."""
    named_from_fact = rule.tag_from is not None and bool(rule.tag_prefix)
    return rule.tag == name or (named_from_fact and name.startswith(rule.tag_prefix or ""))


def given_by_rules(name: str, rules: RuleSet) -> bool:
    """Whether an order or a customer rule gives the tag."""
    listed: list[Rule | CustomerRule] = [*rules.rules, *rules.customer_rules]
    return any(_gives(rule, name) for rule in listed)


def given_to_orders(name: str, rules: RuleSet) -> bool:
    """Whether an order rule gives the tag, or a family gives it to an order no rule of the
    family tagged (``regular``): it says something of one order (or of its customer as of that
    order)."""
    return any(_gives(rule, name) for rule in rules.rules) or any(
        family.default == name for family in rules.families
    )


def given_to_customers(name: str, rules: RuleSet) -> bool:
    """Whether only customer rules give the tag: it sits on customers, never on an order (an
    order's tag filter or bulk tagging would find or set nothing with it)."""
    return any(_gives(rule, name) for rule in rules.customer_rules) and not given_to_orders(
        name, rules
    )


def fixed_rule_tags(rules: RuleSet) -> set[str]:
    """The tags order and customer rules give by name."""
    listed: list[Rule | CustomerRule] = [*rules.rules, *rules.customer_rules]
    return {rule.tag for rule in listed if rule.tag}


def settable_tags(rules: RuleSet, in_use: Iterable[str]) -> list[CatalogTag]:
    """The tags rules name from facts: every known value's, and each in-use one's, in name
    order, with the family of the rule and the built-in labels (``category:beauty`` 美妆)."""
    found: dict[str, CatalogTag] = {}
    used = sorted(set(in_use))
    for rule in named_from(rules):
        if rule.fact in NOT_LISTED_FACTS:
            continue
        values = [
            *KNOWN_VALUES.get(rule.fact, ()),
            *(name[len(rule.prefix) :] for name in used if name.startswith(rule.prefix)),
        ]
        for value in values:
            name = rule.prefix + value
            if name in found or not value or not _TAG_NAME.match(name):
                continue
            found[name] = CatalogTag(name=name, family=rule.family, labels=builtin_labels_of(name))
    return [found[name] for name in sorted(found)]


def listed_catalog(
    stored: dict[str, CatalogTag], rules: RuleSet, in_use: Iterable[str]
) -> dict[str, CatalogTag]:
    """The catalog as listed: its stored tags, then each tag the rules can set that it lacks."""
    listed = dict(stored)
    for tag in settable_tags(rules, in_use):
        listed.setdefault(tag.name, tag)
    return dict(sorted(listed.items()))

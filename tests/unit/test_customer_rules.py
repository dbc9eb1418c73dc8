"""Customer rules, pure: the rule file refuses what cannot work, each rule decides on facts, the
merge keeps manual tags and "since when", and the review time follows the rules' thresholds."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.tagger.customers.model import (
    merge_customer_tags,
    next_review_at,
    review_thresholds,
)
from services.tagger.rules.customer_engine import decide_customer
from services.tagger.rules.customer_facts import (
    SECONDS_PER_DAY,
    CustomerProfile,
    LiveFigures,
    category_items,
    customer_facts,
    sku_items,
)
from services.tagger.rules.engine import Decision
from services.tagger.rules.schema import RuleFileError, RuleSet, load_rules, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.events import AppliedTag, TagSource

DAY = SECONDS_PER_DAY
NOW = 20_000 * DAY + 3600.0  # an hour into epoch day 20000
AT = datetime.fromtimestamp(NOW, UTC)
HEAD = """
families: [{name: lifecycle, exclusive: true}]
tags: [{name: "lifecycle:new", family: lifecycle}, {name: "lifecycle:lapsed", family: lifecycle}]
"""


def rules() -> RuleSet:
    return load_rules(DEFAULT_RULES_FILE)


def decide(
    figures: LiveFigures, first_sales: dict[str, float] | None = None, now: float = NOW
) -> dict[str, str]:
    ruleset = rules()
    decisions = decide_customer(
        ruleset.customer_rules,
        customer_facts(figures, CustomerProfile(), now),
        {"category": category_items(figures, now), "sku": sku_items(figures, first_sales or {})},
        family_of={name: tag.family for name, tag in ruleset.catalog.items()},
        exclusive=ruleset.exclusive_families,
    )
    return {d.tag: d.reason for d in decisions}


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("{id: a, version: 1, tag: 'lifecycle:new', when: {fact: amount, gt: 1}, reason: r}",
         "when names 'amount', not a customer fact"),
        ("{id: a, version: 1, tag: 'lifecycle:new', when: {fact: sku.orders, gt: 1}, reason: r}",
         "not a customer fact"),
        ("{id: a, version: 1, tag: nope, when: {fact: orders_total, gt: 1}, reason: r}",
         "tag 'nope' is not in the tag catalog"),
        ("{id: a, version: 1, each: sku, tag_from: category, reason: r}",
         "tag_from names unknown customer fact 'category'"),
        ("{id: a, version: 1, tag: 'lifecycle:new', when: {fact: vip, eq: 1}, reason: '{amount}'}",
         "reason names unknown customer fact {amount}"),
    ],
)  # fmt: skip
def test_the_rule_file_refuses_customer_rules_that_cannot_work(rule: str, problem: str) -> None:
    with pytest.raises(RuleFileError, match="customer") as refused:
        parse_rules(HEAD + f"customer_rules: [{rule}]")
    assert problem in str(refused.value)


def test_an_order_rule_naming_a_customer_fact_is_refused() -> None:
    text = HEAD + (
        "rules: [{id: o, version: 1, tag: 'lifecycle:new', "
        "when: {fact: days_since_last_order, gt: 1}, reason: r}]"
    )
    with pytest.raises(RuleFileError, match="'days_since_last_order' is a customer fact"):
        parse_rules(text)


def test_lifecycle_is_one_of_new_returning_lapsed() -> None:
    one = LiveFigures(orders=1, spend_cents=100, first_order_at=NOW - DAY, last_order_at=NOW - DAY)
    assert "lifecycle:new" in decide(one)
    two = LiveFigures(orders=2, spend_cents=200, first_order_at=NOW - 9 * DAY, last_order_at=NOW)
    assert "lifecycle:returning" in decide(two)
    gone = LiveFigures(orders=2, first_order_at=NOW - 200 * DAY, last_order_at=NOW - 91 * DAY)
    tags = decide(gone)
    assert "lifecycle:lapsed" in tags
    assert "lifecycle:returning" not in tags  # the family is exclusive: the first rule wins


def test_behaviour_counts_orders_and_spend_inside_their_windows() -> None:
    today = int(NOW // DAY)
    recent = (NOW - 10 * DAY, NOW - 30 * DAY, NOW - 60 * DAY, NOW - 89 * DAY, NOW - 120 * DAY)
    figures = LiveFigures(
        orders=5,
        spend_cents=2_500_000,
        first_order_at=recent[-1],
        last_order_at=recent[0],
        recent_order_times=recent,
        spend_by_day={today - 10: 1_000_000, today - 364: 1_000_000, today - 365: 500_000},
    )
    facts = customer_facts(figures, CustomerProfile(), NOW)
    assert facts["orders_90d"] == 4
    assert facts["orders_30d"] == 1  # 30 days ago to the second is out
    assert facts["spend_365d"] == Decimal("20000.00")  # day -365 has left the window
    assert facts["average_days_between_orders"] == 27.5
    tags = decide(figures)
    assert tags["frequent-buyer"] == "4 orders in 90 days (≥ 4) → frequent buyer"
    assert "high-spender" in tags


def test_category_preference_by_orders_or_share_and_product_by_repeat() -> None:
    today = int(NOW // DAY)
    figures = LiveFigures(
        orders=4,
        first_order_at=NOW - 100 * DAY,
        last_order_at=NOW,
        by_category={
            (today - 100, "家居"): (1, 10_000),
            (today - 50, "家居"): (2, 20_000),
            (today, "beauty"): (1, 70_000),
            (today - 400, "toys"): (5, 900_000),  # outside the 365 days
        },
        products={"SOFA-1": (2, NOW - 100 * DAY), "LIP-9": (1, NOW)},
    )
    tags = decide(figures)
    assert tags["prefers:家居"] == "家居: 3 orders, 0.30 of spend over 365 days"
    assert tags["prefers:beauty"] == "beauty: 1 orders, 0.70 of spend over 365 days"
    assert "prefers:toys" not in tags
    assert "product:sofa-1" in tags
    assert "product:lip-9" not in tags


def test_early_adopter_compares_the_first_buy_with_the_products_first_sale() -> None:
    figures = LiveFigures(orders=1, products={"NEW-1": (1, NOW)}, last_order_at=NOW)
    assert "early-adopter" in decide(figures, {"NEW-1": NOW - 14 * DAY})
    assert "early-adopter" not in decide(figures, {"NEW-1": NOW - 15 * DAY})
    assert "early-adopter" not in decide(figures, {})  # first sale unknown: no claim


def test_merge_keeps_manual_tags_and_the_time_a_tag_was_first_given() -> None:
    ruleset = rules()
    before = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    held = AppliedTag(
        name="lifecycle:returning", family="lifecycle", source=TagSource.RULE,
        rule_id="lifecycle.returning", rule_version=1, reason="2 orders → returning", at=before,
    )  # fmt: skip
    manual = AppliedTag(name="vip", source=TagSource.MANUAL, by="王", reason="生日", at=before)
    figures = LiveFigures(orders=3, first_order_at=NOW - DAY, last_order_at=NOW)
    decisions = decide_customer(
        ruleset.customer_rules,
        customer_facts(figures, CustomerProfile(), NOW),
        {"category": [], "sku": []},
        family_of={n: t.family for n, t in ruleset.catalog.items()},
        exclusive=ruleset.exclusive_families,
    )
    change = merge_customer_tags(
        [held, manual], decisions, exclusive=ruleset.exclusive_families, at=later
    )
    by_name = {t.name: t for t in change.tags}
    assert by_name["lifecycle:returning"].at == before  # held since January
    assert by_name["lifecycle:returning"].reason == "3 orders → returning"  # the figure moved
    assert by_name["vip"] == manual
    assert change.added == []
    assert change.removed == []


def _decisions(figures: LiveFigures, ruleset: RuleSet) -> list[Decision]:
    return decide_customer(
        ruleset.customer_rules,
        customer_facts(figures, CustomerProfile(), NOW),
        {"category": category_items(figures, NOW), "sku": sku_items(figures, {})},
        family_of={n: t.family for n, t in ruleset.catalog.items()},
        exclusive=ruleset.exclusive_families,
    )


def test_merged_rule_tags_are_what_validating_them_gives() -> None:
    """Rule tags are built without validation: every kind the built-in rules give (fixed tags,
    tags from a category or SKU slug, reasons with figures) must be a valid ``AppliedTag``."""
    today = int(NOW // DAY)
    figures = LiveFigures(
        orders=5,
        spend_cents=3_000_000,
        first_order_at=NOW - 100 * DAY,
        last_order_at=NOW,
        spend_by_day={today: 3_000_000},
        recent_order_times=(NOW - 3 * DAY, NOW - 2 * DAY, NOW - DAY, NOW),
        by_category={(today, "家居 & Garden"): (3, 3_000_000)},
        products={"SOFA-1 XL": (2, NOW - 100 * DAY)},
    )
    change = merge_customer_tags(
        [], _decisions(figures, rules()), exclusive=rules().exclusive_families, at=AT
    )
    assert {"prefers:家居-garden", "product:sofa-1-xl", "frequent-buyer"} <= {
        t.name for t in change.tags
    }
    for tag in change.tags:
        assert AppliedTag.model_validate(tag.model_dump()) == tag


def test_a_held_tag_is_kept_as_it_is_unless_its_family_rule_or_reason_moved() -> None:
    ruleset = rules()
    figures = LiveFigures(orders=3, first_order_at=NOW - DAY, last_order_at=NOW)
    decisions = _decisions(figures, ruleset)
    first = merge_customer_tags([], decisions, exclusive=ruleset.exclusive_families, at=AT)
    again = merge_customer_tags(
        first.tags, decisions, exclusive=ruleset.exclusive_families, at=AT + timedelta(days=1)
    )
    assert all(a is b for a, b in zip(again.tags, first.tags, strict=True))
    moved = [d._replace(family="loyalty") for d in decisions]  # the catalog moved the tag
    refamilied = merge_customer_tags(
        first.tags, moved, exclusive=ruleset.exclusive_families, at=AT + timedelta(days=1)
    )
    assert {t.family for t in refamilied.tags} == {"loyalty"}
    assert [t.at for t in refamilied.tags] == [t.at for t in first.tags]  # still held since


def test_the_review_comes_when_a_window_or_a_lapse_threshold_is_crossed() -> None:
    last = NOW - 80 * DAY
    figures = LiveFigures(orders=1, first_order_at=last, last_order_at=last)
    thresholds = review_thresholds(rules().customer_rules)
    review = next_review_at(figures, thresholds, NOW)
    assert review == datetime.fromtimestamp(last + 90 * DAY + 1, UTC)  # the lapse rule's 90
    recent = LiveFigures(
        orders=1, first_order_at=NOW - DAY, last_order_at=NOW - DAY, recent_order_times=(NOW - DAY,)
    )
    assert next_review_at(
        recent, review_thresholds(rules().customer_rules), NOW
    ) == datetime.fromtimestamp(NOW + 29 * DAY, UTC)  # the order leaves the 30-day window first
    long_gone = LiveFigures(orders=1, first_order_at=NOW - 900 * DAY, last_order_at=NOW - 900 * DAY)
    assert next_review_at(long_gone, thresholds, NOW) is None


def test_the_review_at_the_lapse_threshold_finds_the_lapse_and_words_it_in_whole_days() -> None:
    """At the review, one second past 90 days, "> 90" holds (a fact rounded to 0.01 day did
    not, and the next review was the year's end); the reason reads whole days, rounded up
    where the rule tests a lower bound, down for days gone by."""
    last = NOW - 80 * DAY
    figures = LiveFigures(orders=1, first_order_at=last, last_order_at=last)
    review = next_review_at(figures, review_thresholds(rules().customer_rules), NOW)
    assert review is not None
    at_review = decide(figures, now=review.timestamp())
    assert at_review["lifecycle:lapsed"] == "no order for 91 days (> 90) → lapsed"
    an_hour_in = LiveFigures(orders=1, first_order_at=NOW - 3600, last_order_at=NOW - 3600)
    assert decide(an_hour_in)["lifecycle:new"] == "first order 0 days ago → new"
    bought = LiveFigures(orders=1, products={"NEW-1": (1, NOW)}, last_order_at=NOW)
    early = decide(bought, {"NEW-1": NOW - 13.9 * DAY})["early-adopter"]
    assert early == "bought NEW-1 13 days after its first sale (≤ 14)"
    assert "early-adopter" not in decide(bought, {"NEW-1": NOW - 14 * DAY - 1})  # exact, too

"""The default rule set at its boundaries, and the rule language itself (no servers)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.tagger.rules.engine import Decision, decide, explain, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.regions import region_of
from services.tagger.rules.schema import RuleFileError, RuleSet, load_rules, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.events import AppliedTag, TagSource
from tests.factories import BASE_TIME, at, make_order

RULES: RuleSet = load_rules(DEFAULT_RULES_FILE)


def tags_for(figures: FiguresSnapshot | None = None, **overrides: Any) -> set[str]:
    order = make_order(**overrides)
    return {d.tag for d in decide(RULES, order_facts(order, figures or FiguresSnapshot()))}


def history(
    count: int, spend: str = "0", spend_365d: str = "0", times: tuple[float, ...] = ()
) -> FiguresSnapshot:
    return FiguresSnapshot(
        prior_order_count=count,
        prior_lifetime_spend=Decimal(spend),
        spend_365d=Decimal(spend_365d),
        recent_order_times=times,
    )


# ── priority ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("method", ["express", "same_day"])
def test_fast_shipping_is_urgent(method: str) -> None:
    assert "urgent" in tags_for(shipping={"method": method})


def test_standard_shipping_without_other_signals_is_regular() -> None:
    tags = tags_for(shipping={"method": "standard"})

    assert "regular" in tags
    assert "urgent" not in tags


def test_exactly_one_priority_tag_even_when_several_urgent_rules_fire() -> None:
    tags = tags_for(shipping={"method": "same_day"}, notes="加急", requested_delivery_at=at(60))

    assert len(tags & {"urgent", "regular"}) == 1


@pytest.mark.parametrize(("hours", "urgent"), [(24, True), (24.01, False), (1, True), (-1, True)])
def test_requested_delivery_within_24_hours_is_urgent(hours: float, urgent: bool) -> None:
    tags = tags_for(requested_delivery_at=at(hours * 60))

    assert ("urgent" in tags) is urgent


@pytest.mark.parametrize("notes", ["URGENT please", "请加急处理", "紧急", "asap"])
def test_urgent_markers_in_notes_are_urgent(notes: str) -> None:
    assert "urgent" in tags_for(notes=notes)


def test_urgent_ends_once_the_order_ships() -> None:
    assert "urgent" not in tags_for(shipping={"method": "same_day"}, status="shipped")
    assert "regular" in tags_for(shipping={"method": "same_day"}, status="shipped")


@pytest.mark.parametrize(("total", "urgent"), [("4999.99", False), ("5000.00", True)])
def test_vip_orders_from_5000_are_urgent(total: str, urgent: bool) -> None:
    tags = tags_for(customer={"id": "C-V", "name": "V", "vip": True}, pricing={"total": total})
    assert ("urgent" in tags) is urgent


# ── customer ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("prior_spend", "vip"), [("499899.99", False), ("499900.00", True)])
def test_vip_by_lifetime_spend_including_this_order(prior_spend: str, vip: bool) -> None:
    tags = tags_for(history(3, spend=prior_spend), pricing={"total": "100.00"})

    assert ("vip" in tags) is vip


def test_vip_by_explicit_flag() -> None:
    assert "vip" in tags_for(customer={"id": "C-2", "name": "x", "vip": True})


@pytest.mark.parametrize(("total", "big"), [("49999.99", False), ("50000.00", True)])
def test_big_customer_from_a_single_order_of_50000(total: str, big: bool) -> None:
    assert ("big-customer" in tags_for(pricing={"total": total})) is big


@pytest.mark.parametrize(("spend_365d", "high"), [("100000.00", False), ("100000.01", True)])
def test_high_value_is_spend_over_365_days_above_100000(spend_365d: str, high: bool) -> None:
    assert ("high-value" in tags_for(history(1, spend_365d=spend_365d))) is high


def test_first_order_is_new_customer_and_new_order() -> None:
    tags = tags_for(history(0))

    assert {"new-customer", "new-order"} <= tags
    assert not tags & {"returning-customer", "repeat-order"}


def test_second_order_is_returning_customer_and_repeat_order() -> None:
    tags = tags_for(history(1, spend="10"))

    assert {"returning-customer", "repeat-order"} <= tags
    assert not tags & {"new-customer", "new-order"}


def test_returned_order_is_a_return_order() -> None:
    tags = tags_for(history(2, spend="10"), status="returned")

    assert "return-order" in tags
    assert "repeat-order" not in tags


def test_crm_order_type_wins_over_history() -> None:
    assert "return-order" in tags_for(history(0), order_type="return")


# ── status, category, region ────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "status", ["pending", "processed", "shipped", "completed", "cancelled", "returned"]
)
def test_exactly_one_status_tag_follows_the_status(status: str) -> None:
    tags = tags_for(status=status)

    assert [t for t in tags if t.startswith("status:")] == [f"status:{status}"]


def test_one_category_tag_per_distinct_line_category() -> None:
    lines = [
        {"sku": "A", "name": "a", "category": "Electronics", "quantity": 1, "unit_price": "1"},
        {"sku": "B", "name": "b", "category": "家电", "quantity": 1, "unit_price": "1"},
        {"sku": "C", "name": "c", "category": "electronics", "quantity": 1, "unit_price": "1"},
    ]
    tags = tags_for(lines=lines)

    assert {t for t in tags if t.startswith("category:")} == {
        "category:electronics",
        "category:家电",
    }


@pytest.mark.parametrize(
    ("province", "region"),
    [
        ("北京", "north-china"),
        ("天津市", "north-china"),
        ("河北省", "north-china"),
        ("上海", "east-china"),
        ("江苏省", "east-china"),
        ("Zhejiang", "east-china"),
        ("黑龙江省", "northeast-china"),
        ("湖北", "central-china"),
        ("广东省", "south-china"),
        ("广西壮族自治区", "south-china"),
        ("四川", "southwest-china"),
        ("新疆维吾尔自治区", "northwest-china"),
        ("陕西", "northwest-china"),
        ("山西", "north-china"),
        ("内蒙古自治区", "north-china"),
        ("香港特别行政区", "hong-kong"),
        ("澳门", "macao"),
        ("台湾", "taiwan"),
    ],
)
def test_province_maps_to_its_region(province: str, region: str) -> None:
    assert region_of(province) == region
    assert f"region:{region}" in tags_for(shipping={"province": province})


def test_every_mainland_province_has_a_region() -> None:
    mainland = [
        "北京",
        "天津",
        "河北",
        "山西",
        "内蒙古",
        "辽宁",
        "吉林",
        "黑龙江",
        "上海",
        "江苏",
        "浙江",
        "安徽",
        "福建",
        "江西",
        "山东",
        "河南",
        "湖北",
        "湖南",
        "广东",
        "广西",
        "海南",
        "重庆",
        "四川",
        "贵州",
        "云南",
        "西藏",
        "陕西",
        "甘肃",
        "青海",
        "宁夏",
        "新疆",
    ]

    assert all(region_of(p) for p in mainland)
    assert len(mainland) == 31


def test_unknown_province_gets_no_region_tag() -> None:
    assert not [t for t in tags_for(shipping={"province": "Atlantis"}) if t.startswith("region:")]


# ── risk ────────────────────────────────────────────────────────────────────────────


def minutes_before(minutes: float) -> float:
    return (BASE_TIME - timedelta(minutes=minutes)).timestamp()


def test_fifth_order_within_10_minutes_is_velocity_risk() -> None:
    four_earlier = tuple(minutes_before(m) for m in (1, 3, 5, 9.9))

    assert "risk:velocity" in tags_for(history(4, "40", times=four_earlier))


def test_orders_spread_beyond_10_minutes_are_not_velocity_risk() -> None:
    spread = tuple(minutes_before(m) for m in (1, 3, 5, 10.1))

    assert "risk:velocity" not in tags_for(history(4, "40", times=spread))


@pytest.mark.parametrize(("total", "anomaly"), [("499.99", False), ("500.00", True)])
def test_amount_five_times_the_average_is_an_anomaly(total: str, anomaly: bool) -> None:
    tags = tags_for(history(3, spend="300"), pricing={"total": total})

    assert ("risk:amount-anomaly" in tags) is anomaly


def test_no_amount_anomaly_without_three_earlier_orders() -> None:
    assert "risk:amount-anomaly" not in tags_for(history(2, spend="2"), pricing={"total": "9999"})


@pytest.mark.parametrize(("total", "risky"), [("19999.99", False), ("20000.00", True)])
def test_new_customer_with_a_very_large_order_is_a_risk(total: str, risky: bool) -> None:
    tags = tags_for(history(0), pricing={"total": total})

    assert ("risk:new-customer-large-order" in tags) is risky


# ── merging, limits, provenance ─────────────────────────────────────────────────────

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def manual(name: str, family: str | None = None) -> AppliedTag:
    return AppliedTag(
        name=name, family=family, source=TagSource.MANUAL, by="ana", reason="by hand", at=NOW
    )


def decision(tag: str, family: str | None = None, rule_id: str = "r") -> Decision:
    return Decision(tag, family, rule_id, 1, f"{rule_id} → {tag}")


def test_manual_tags_survive_rule_re_evaluation() -> None:
    change = merge_tags(
        [manual("call-back")],
        [decision("regular", "priority")],
        exclusive_families={"priority"},
        max_tags=20,
        at=NOW,
    )

    assert [t.name for t in change.tags] == ["call-back", "regular"]
    assert change.removed == []


def test_manual_tag_wins_its_exclusive_family() -> None:
    change = merge_tags(
        [manual("urgent", "priority")],
        [decision("regular", "priority")],
        exclusive_families={"priority"},
        max_tags=20,
        at=NOW,
    )

    assert [t.name for t in change.tags] == ["urgent"]


def test_rule_tag_no_longer_decided_is_removed_and_reported() -> None:
    first = merge_tags(
        [],
        [decision("urgent", "priority", "fast")],
        exclusive_families={"priority"},
        max_tags=20,
        at=NOW,
    )
    second = merge_tags(
        first.tags,
        [decision("regular", "priority", "default")],
        exclusive_families={"priority"},
        max_tags=20,
        at=NOW + timedelta(hours=1),
    )

    assert [t.name for t in second.removed] == ["urgent"]
    assert [t.name for t in second.added] == ["regular"]


def test_re_applying_the_same_decisions_changes_nothing() -> None:
    decisions = [decision("urgent", "priority", "fast"), decision("vip", "customer", "vip")]
    first = merge_tags([], decisions, exclusive_families=set(), max_tags=20, at=NOW)

    again = merge_tags(
        first.tags, decisions, exclusive_families=set(), max_tags=20, at=NOW + timedelta(days=1)
    )

    assert again.tags == first.tags
    assert again.added == again.removed == []


def test_tags_past_the_limit_are_reported_not_silently_lost() -> None:
    decisions = [decision(f"t{i}", rule_id=f"r{i}") for i in range(5)]

    change = merge_tags([manual("keep")], decisions, exclusive_families=set(), max_tags=3, at=NOW)

    assert [t.name for t in change.tags] == ["keep", "t0", "t1"]
    assert [d.tag for d in change.dropped_by_limit] == ["t2", "t3", "t4"]


def test_every_rule_tag_carries_rule_id_version_reason_and_time() -> None:
    order = make_order(shipping={"method": "same_day"})
    decisions = decide(RULES, order_facts(order, FiguresSnapshot()))
    change = merge_tags(
        [], decisions, exclusive_families=RULES.exclusive_families, max_tags=20, at=NOW
    )

    urgent = next(t for t in change.tags if t.name == "urgent")
    assert (urgent.rule_id, urgent.rule_version, urgent.at) == ("priority.fast-shipping", 1, NOW)
    assert urgent.reason == "same_day shipping → urgent"


# ── the rule file ───────────────────────────────────────────────────────────────────

GOOD_RULE = """
families: [{name: priority, exclusive: true}]
tags: [{name: urgent, family: priority}]
rules:
  - id: fast
    version: 1
    tag: urgent
    when: {fact: shipping.method, eq: express}
    reason: "{shipping.method} → urgent"
"""


def test_a_valid_rule_file_loads() -> None:
    assert [r.id for r in parse_rules(GOOD_RULE).rules] == ["fast"]


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("fact: shipping.method", "fact: shipping.methd"),
        ("eq: express", "eq: express, gt: 3"),
        ("version: 1", "version: 0"),
        ("tag: urgent", "tag: unheard-of"),
        ('reason: "{shipping.method} → urgent"', 'reason: "{nope} → urgent"'),
    ],
)
def test_an_invalid_rule_is_refused_naming_rule_id_and_field(broken: str, expected: str) -> None:
    text = GOOD_RULE.replace(broken, expected)

    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, "rules.yaml")

    message = str(caught.value)
    assert "rules.yaml" in message
    assert "fast" in message


def test_unknown_fact_error_says_which_field_and_what_is_known() -> None:
    with pytest.raises(
        RuleFileError, match=r"rule fast, field when.fact: unknown fact 'shipping.methd'"
    ):
        parse_rules(GOOD_RULE.replace("fact: shipping.method", "fact: shipping.methd"))


def test_duplicate_rule_ids_are_refused() -> None:
    rule = GOOD_RULE.split("rules:\n")[1]
    with pytest.raises(RuleFileError, match="duplicate rule id 'fast'"):
        parse_rules(GOOD_RULE + rule)


def test_combinators_nest() -> None:
    rules = parse_rules(
        GOOD_RULE.replace(
            "when: {fact: shipping.method, eq: express}",
            "when: {all: [{any: [{fact: amount, gte: 10}, {fact: notes, contains: vip}]}, "
            "{not: {fact: status, in: [cancelled]}}]}",
        )
    )
    cheap_vip_note = make_order(notes="VIP guest", pricing={"total": "1"})
    cancelled = make_order(pricing={"total": "50"}, status="cancelled")

    assert decide(rules, order_facts(cheap_vip_note, FiguresSnapshot()))[0].tag == "urgent"
    assert decide(rules, order_facts(cancelled, FiguresSnapshot())) == []


def test_customer_tiers_come_from_the_tier_family_in_catalog_order() -> None:
    assert RULES.customer_tiers == (
        "vip",
        "high-value",
        "big-customer",
        "returning-customer",
        "new-customer",
    )
    custom = parse_rules(
        """
families:
  - {name: who, tier: true}
  - {name: priority}
tags:
  - {name: gold, family: who}
  - {name: urgent, family: priority}
  - {name: silver, family: who}
rules: []
"""
    )
    assert custom.customer_tiers == ("gold", "silver")


def test_explaining_an_order_names_every_tag_a_rule_gave_it() -> None:
    """The order page's "why these tags" and ``ordertag rules explain``: a rule naming its tags
    from a fact explains each of them (it once showed only the last category), a rule whose
    family an earlier rule took says its conditions hold, and the family default comes last."""
    line = {"sku": "X", "name": "x", "quantity": 1, "unit_price": "10.00"}
    order = make_order(
        lines=[{**line, "category": c} for c in ("beauty", "books", "food")],
        shipping={"method": "same_day", "province": "上海"},
        notes="加急",
    )

    verdicts = explain(RULES, order_facts(order, FiguresSnapshot()))

    categories = [v for v in verdicts if v.rule_id == "category"]
    assert [v.tag for v in categories] == ["category:beauty", "category:books", "category:food"]
    assert all(v.decision is not None and v.decision.tag == v.tag for v in categories)
    by_notes = next(v for v in verdicts if v.rule_id == "priority.urgent-notes")
    assert by_notes.matches
    assert by_notes.decision is None  # urgent came from the shipping
    assert [v.rule_id for v in verdicts][-1:] != ["default.priority"]  # urgent: no default
    regular = explain(RULES, order_facts(make_order(), FiguresSnapshot()))[-1]
    assert (regular.rule_id, regular.tag) == ("default.priority", "regular")
    decided = {d.tag for d in decide(RULES, order_facts(order, FiguresSnapshot()))}
    assert {v.tag for v in verdicts if v.decision} == decided

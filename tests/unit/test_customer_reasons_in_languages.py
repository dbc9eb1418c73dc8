"""Customer rules' reasons in the staff's language: every default customer rule has Chinese
words with the same placeholders, and a stored customer tag reads in the language asked for."""

import pytest

from services.tagger.builtin_labels import reason_labels
from services.tagger.customers.segments import in_language
from services.tagger.rules.reason_values import for_people, threshold_text
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import PLACEHOLDER, RuleFileError, load_rules, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE

HAN = range(0x4E00, 0xA000)
RULES = load_rules(DEFAULT_RULES_FILE)

RULE_FILE = """
tags: [{name: high-spender}]
customer_rules:
  - id: behaviour.high-spender
    version: 1
    tag: high-spender
    when: {fact: spend_365d, gte: 20000}
    reason: "spend {spend_365d} over 365 days ({orders_365d} orders)"
    reasons: {zh-CN: "ZH"}
"""


@pytest.mark.parametrize("rule", RULES.customer_rules, ids=lambda rule: rule.id)
def test_every_default_customer_rule_gives_its_reason_in_chinese(rule: object) -> None:
    zh = rule.reasons.get("zh-CN")  # type: ignore[attr-defined]
    assert zh, "no zh-CN reason"
    assert any(ord(c) in HAN for c in zh)
    assert PLACEHOLDER.findall(zh) == PLACEHOLDER.findall(rule.reason)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "words", ["365 天消费 {spend_365d}", "{orders_365d} 单，消费 {spend_365d}"]
)
def test_a_customer_rule_translation_must_use_the_reasons_placeholders_in_order(
    words: str,
) -> None:
    with pytest.raises(RuleFileError) as error:
        parse_rules(RULE_FILE.replace("ZH", words))
    assert "reasons.zh-CN" in str(error.value)
    assert "{spend_365d}, {orders_365d}" in str(error.value)


def test_a_stored_customer_rule_tag_reads_in_the_language_asked_for() -> None:
    rules = parse_rules(RULE_FILE.replace("ZH", "365 天消费 {spend_365d}（{orders_365d} 单）"))
    tag = {
        "name": "high-spender",
        "source": "rule",
        "rule_id": "behaviour.high-spender",
        "rule_version": 1,
        "reason": "spend 30599.00 over 365 days (4 orders)",
    }
    manual = {"name": "vip", "source": "manual", "by": "王小明", "reason": "生日关怀"}
    unknown_version = {**tag, "rule_version": 7}

    chinese = ReasonTemplates(rules, customer=True).in_language("zh-CN")
    english = ReasonTemplates(rules, customer=True).in_language("en")

    assert in_language(tag, chinese)["reason"] == "365 天消费 30,599.00（4 单）"
    assert in_language(tag, english)["reason"] == "spend 30,599.00 over 365 days (4 orders)"
    assert in_language(manual, chinese) == manual
    assert in_language(unknown_version, chinese) == unknown_version  # kept as stored


def test_order_rule_templates_do_not_take_customer_rules() -> None:
    templates = ReasonTemplates(RULES)

    assert templates.template("behaviour.high-spender", 1) is None
    assert ReasonTemplates(RULES, customer=True).template("behaviour.high-spender", 1)


def _stored(rule_id: str, reason: str) -> dict[str, object]:
    return {"name": "t", "source": "rule", "rule_id": rule_id, "rule_version": 1, "reason": reason}


def test_default_customer_reasons_read_as_people_say_them() -> None:
    """Days are whole days (rounded up where the rule tests a lower bound, so "> 90" stays true
    of 90.3 stored by an earlier release; down otherwise), a share is a percentage, a category
    is named in the reader's words; an identifier is kept as it is."""
    templates = ReasonTemplates(RULES, customer=True)
    chinese = templates.in_language("zh-CN", reason_labels("zh-CN"))
    english = templates.in_language("en", reason_labels("en"))
    lapsed = _stored("lifecycle.lapsed", "no order for 90.3 days (> 90) → lapsed")
    prefers = _stored("preference.category", "electronics: 3 orders, 0.76 of spend over 365 days")
    early = _stored(
        "behaviour.early-adopter", "bought 1002003 13.2 days after its first sale (≤ 14)"
    )

    assert in_language(lapsed, chinese)["reason"] == "91 天没有下单（> 90）→ 流失客户"
    assert in_language(lapsed, english)["reason"] == "no order for 91 days (> 90) → lapsed customer"
    assert in_language(prefers, chinese)["reason"] == "数码电子：365 天内 3 单，占消费 76%"
    assert in_language(prefers, english)["reason"] == (
        "Electronics over 365 days: orders 3, share of spend 76%"
    )
    assert in_language(early, chinese)["reason"] == (
        "1002003 首次开售后 13 天内购买（≤ 14）→ 新品试用者"
    )
    assert in_language(early, english)["reason"] == (
        "bought 1002003; days after its first sale: 13 (≤ 14) → early adopter"
    )


def test_english_reasons_read_right_for_one_as_for_many() -> None:
    """A count or a number of days can be 1: the English words name what is counted before
    the number, so no reason reads "1 orders" or "1 days"."""
    customer = ReasonTemplates(RULES, customer=True).in_language("en", reason_labels("en"))
    orders = ReasonTemplates(RULES).in_language("en", reason_labels("en"))
    one = [
        customer.reason("preference.category", 1, ["electronics", "1", "0.6"]),
        customer.reason("lifecycle.new", 1, ["1.2"]),
        customer.reason("behaviour.early-adopter", 1, ["SOFA-1", "1.0"]),
        orders.reason("customer.returning", 1, ["1"]),
    ]

    assert one == [
        "Electronics over 365 days: orders 1, share of spend 60%",
        "days since the first order: 1 → first-order customer",
        "bought SOFA-1; days after its first sale: 1 (≤ 14) → early adopter",
        "earlier orders: 1 → returning customer",
    ]


@pytest.mark.parametrize(
    ("fact", "stored", "round_up", "shown"),
    [
        ("days_since_last_order", "0.0", True, "0"),
        ("days_since_last_order", "90.01", True, "91"),
        ("days_since_first_order", "1234.9", False, "1,234"),
        ("days_since_first_order", "-0.1", True, "0"),  # never "-0"
        ("sku.days_after_first_sale", "—", False, "—"),
        ("sku.days_after_first_sale", "1E+3", False, "1,000"),
        ("category.spend_share_365d", "0.0049", False, "0%"),
        ("category.spend_share_365d", "-0.001", False, "0%"),
        ("category.spend_share_365d", "1.0000", False, "100%"),
        ("category.spend_share_365d", "1e30", False, "1e30"),  # too large: as stored, no error
        ("spend_365d", "30599.00", False, "30,599.00"),
        ("sku", "100200", False, "100200"),
        (None, "1234", False, "1234"),
    ],
)
def test_a_stored_value_for_people(
    fact: str | None, stored: str, round_up: bool, shown: str
) -> None:
    assert for_people(fact, stored, round_up=round_up) == shown


@pytest.mark.parametrize(
    ("fact", "bound", "shown"),
    [
        ("days_since_last_order", 90.5, "90.5"),
        ("category.spend_share_365d", 0.755, "75.5%"),
        ("category.spend_share_365d", 0.4, "40%"),
        ("amount", -5000, "-5,000"),
        ("customer.id", 10001, "10001"),
    ],
)
def test_a_rules_bound_is_shown_as_written(fact: str, bound: object, shown: str) -> None:
    assert threshold_text(fact, bound) == shown

"""Customer rules' reasons in the staff's language: every default customer rule has Chinese
words with the same placeholders, and a stored customer tag reads in the language asked for."""

import pytest

from services.tagger.customers.segments import in_language
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

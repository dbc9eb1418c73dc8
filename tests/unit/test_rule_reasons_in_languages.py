"""A rule's reason in the reader's language: the stored values filled into the rule's words
in that language, for every rule of the default rule set."""

from datetime import UTC, datetime

import pytest

from services.tagger.builtin_labels import reason_labels
from services.tagger.rules.reasons import ReasonTemplates, fill_in_chinese
from services.tagger.rules.schema import PLACEHOLDER, RuleFileError, load_rules, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.events import AppliedTag, TagSource
from shared.stored_tags import order_tags, stored_tag

HAN = range(0x4E00, 0xA000)
RULES = load_rules(DEFAULT_RULES_FILE)


@pytest.mark.parametrize("rule", RULES.rules, ids=lambda rule: rule.id)
def test_every_default_rule_gives_its_reason_in_chinese(rule: object) -> None:
    zh = rule.reasons.get("zh-CN")  # type: ignore[attr-defined]
    assert zh, "no zh-CN reason"
    assert any(ord(c) in HAN for c in zh)
    assert PLACEHOLDER.findall(zh) == PLACEHOLDER.findall(rule.reason)  # type: ignore[attr-defined]


RULE_FILE = """
tags: [{name: urgent}]
rules:
  - id: fast
    version: 1
    tag: urgent
    when: {fact: shipping.method, eq: express}
    reason: "{shipping.method} shipping of {amount} → urgent"
    reasons: {zh-CN: "ZH"}
"""


@pytest.mark.parametrize(
    "words", ["{amount} {shipping.method} 配送 → 紧急", "{shipping.method} 配送 → 紧急"]
)
def test_a_translation_must_use_the_reasons_placeholders_in_order(words: str) -> None:
    with pytest.raises(RuleFileError) as error:
        parse_rules(RULE_FILE.replace("ZH", words))
    assert "reasons.zh-CN" in str(error.value)
    assert "{shipping.method}, {amount}" in str(error.value)


def test_a_stored_rule_tag_reads_in_the_language_asked_for() -> None:
    rules = parse_rules(RULE_FILE.replace("ZH", "{shipping.method} 配送，金额 {amount} → 紧急"))
    templates = ReasonTemplates(rules)
    at = datetime(2026, 11, 26, tzinfo=UTC)
    tag = AppliedTag(
        name="urgent",
        source=TagSource.RULE,
        rule_id="fast",
        rule_version=1,
        reason="express shipping of 120.00 → urgent",
        at=at,
    )
    document = {"tags": [stored_tag(tag, templates)], "tag_names": ["urgent"], "tags_at": at}

    assert document["tags"][0]["args"] == "express\x1f120.00"  # one string, not an array
    [zh] = order_tags(document, templates.in_language("zh-CN"))
    [en] = order_tags(document, templates.in_language("en"))
    [default] = order_tags(document, templates.in_language(None))
    assert zh.reason == "express 配送，金额 120.00 → 紧急"
    assert en.reason == default.reason == "express shipping of 120.00 → urgent"


def test_a_rule_without_words_in_the_language_reads_in_its_own() -> None:
    rules = parse_rules(RULE_FILE.replace('    reasons: {zh-CN: "ZH"}\n', ""))
    templates = ReasonTemplates(rules).in_language("zh-CN")
    assert templates.reason("fast", 1, ["express", "9.00"]) == "express shipping of 9.00 → urgent"


def _stored(rule_id: str, reason: str) -> dict[str, object]:
    at = datetime(2026, 11, 26, tzinfo=UTC)
    tag = AppliedTag(
        name="t", source=TagSource.RULE, rule_id=rule_id, rule_version=1, reason=reason, at=at
    )
    return {"tags": [stored_tag(tag, ReasonTemplates(RULES))], "tag_names": ["t"], "tags_at": at}


@pytest.mark.parametrize(
    ("rule_id", "reason", "zh", "en"),
    [
        (
            "priority.fast-shipping",
            "same_day shipping → urgent",
            "当日达配送 → 紧急",
            "Same day shipping → urgent",
        ),
        ("status", "order status is pending", "订单状态为待处理", "order status is Pending"),
        (
            "region",
            "shipping province 浙江 is in east-china",
            "收货省份浙江属于华东",
            "shipping province 浙江 is in East China",
        ),
        (
            "default.priority",
            "no priority rule matched → regular",
            "未命中任何优先级规则 → 常规",
            "no priority rule matched → regular",
        ),
    ],
)
def test_fact_values_in_a_reason_read_as_their_labels_in_the_readers_language(
    rule_id: str, reason: str, zh: str, en: str
) -> None:
    templates = ReasonTemplates(RULES)
    document = _stored(rule_id, reason)
    [in_zh] = order_tags(document, templates.in_language("zh-CN", reason_labels("zh-CN")))
    [in_en] = order_tags(document, templates.in_language("en", reason_labels("en")))
    [as_stored] = order_tags(document, templates)
    assert (in_zh.reason, in_en.reason, as_stored.reason) == (zh, en, reason)


def test_a_value_without_a_label_reads_as_it_is() -> None:
    templates = ReasonTemplates(RULES).in_language("zh-CN", reason_labels("zh-CN"))
    assert templates.reason("category", 1, ["家电"]) == "订单商品属于品类家电"
    assert templates.reason("status", 1, ["on-hold"]) == "订单状态为 on-hold"


def test_chinese_drops_the_templates_space_before_a_chinese_value_and_keeps_the_values_own() -> (
    None
):
    assert fill_in_chinese("订单状态为 {value}", ["已退货"]) == "订单状态为已退货"
    assert fill_in_chinese("订单状态为 {value}", ["on-hold"]) == "订单状态为 on-hold"
    assert (
        fill_in_chinese("{sku} 已在 {n} 单中购买", ["北欧 落地灯", "3"])
        == "北欧 落地灯已在 3 单中购买"
    )
    assert fill_in_chinese("收货省份 {p} 属于 {r}", ["浙江", "华东"]) == "收货省份浙江属于华东"
    assert fill_in_chinese("{a} {b}", ["甲", "乙"]) == "甲 乙"  # no Chinese in the template's own

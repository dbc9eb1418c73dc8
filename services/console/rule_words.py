"""Rule conditions and reason templates in words, in the reader's language (the Rules page):
facts and their values by their labels (``配送方式 属于 [加急快递, 当日达]``)."""

from decimal import Decimal
from typing import Any

from services.tagger.builtin_labels import label_file, reason_labels
from services.tagger.rules.conditions import AllOf, AnyOf, FactTest, Not, OrdersWithin
from services.tagger.rules.customer_rules import CustomerRule
from services.tagger.rules.reason_values import threshold_text
from services.tagger.rules.schema import PLACEHOLDER, Rule
from shared.money import grouped_numbers

_OPERATORS = {
    "zh-CN": {
        "eq": "等于",
        "ne": "不等于",
        "gt": ">",
        "gte": "≥",
        "lt": "<",
        "lte": "≤",
        "in_": "属于",
        "not_in": "不属于",
        "contains": "包含",
        "between": "介于",
        "exists": "存在",
    },
    "en": {
        "eq": "is",
        "ne": "is not",
        "gt": ">",
        "gte": "≥",
        "lt": "<",
        "lte": "≤",
        "in_": "is one of",
        "not_in": "is none of",
        "contains": "contains",
        "between": "is between",
        "exists": "exists",
    },
}
_JOIN = {
    "zh-CN": {"all": " 且 ", "any": " 或 ", "not": "并非 ", "window": "{m} 分钟内至少 {n} 单"},
    "en": {
        "all": " and ",
        "any": " or ",
        "not": "not ",
        "window": "at least {n} orders within {m} minutes",
    },
}


def fact_name(fact: str, lang: str) -> str:
    """A fact as the reader calls it (``shipping.method`` → 配送方式, Shipping method); a fact
    the label files do not name (a language without them, a fact added since) as itself."""
    return str((label_file(lang).get("facts") or {}).get(fact, fact)) if lang in _JOIN else fact


def _value(fact: str, value: Any, lang: str) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(fact, v, lang) for v in value) + "]"
    if isinstance(value, bool):
        words = label_file(lang).get("booleans") or {} if lang in _JOIN else {}
        return str(words.get(str(value).lower(), str(value).lower()))
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        # 500,000 as the tags' descriptions write it, a share as a percentage (as the
        # customer's reasons show it); an identifier's number as it is
        return threshold_text(fact, value)
    labels = reason_labels(lang)
    return labels.value(fact, str(value)) if labels is not None else str(value)


def reason_template(rule: Rule | CustomerRule, lang: str) -> str:
    """The rule's reason template in the language, each placeholder naming its fact in it
    (``{配送方式} 配送 → 紧急``)."""
    words: str = rule.reasons.get(lang, rule.reason)  # type: ignore[call-overload]

    def named(match: Any) -> str:
        fact = rule.tag_from if match.group(1) == "value" else match.group(1)
        return "{" + fact_name(fact or match.group(1), lang) + "}"

    return grouped_numbers(PLACEHOLDER.sub(named, words))


def in_words(condition: Any, lang: str) -> str:
    """``{fact: amount, gte: 5000}`` → ``Order amount ≥ 5,000``; nested all/any get brackets."""
    joins = _JOIN.get(lang, _JOIN["en"])
    if isinstance(condition, FactTest):
        operators = _OPERATORS.get(lang, _OPERATORS["en"])
        for name, word in operators.items():
            value = getattr(condition, name)
            if value is not None:
                fact = condition.fact
                return f"{fact_name(fact, lang)} {word} {_value(fact, value, lang)}"
    if isinstance(condition, OrdersWithin):
        return joins["window"].format(m=condition.orders_within_minutes, n=condition.at_least)
    if isinstance(condition, AllOf | AnyOf):
        parts = condition.all if isinstance(condition, AllOf) else condition.any
        glue = joins["all"] if isinstance(condition, AllOf) else joins["any"]
        words = [in_words(p, lang) for p in parts]
        return glue.join(
            f"({w})" if isinstance(p, AllOf | AnyOf) else w
            for p, w in zip(parts, words, strict=True)
        )
    if isinstance(condition, Not):
        return joins["not"] + f"({in_words(condition.not_, lang)})"
    return ""

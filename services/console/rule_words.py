"""Rule conditions in words, in the reader's language (the Rules page). Pure."""

from typing import Any

from services.tagger.rules.conditions import AllOf, AnyOf, FactTest, Not, OrdersWithin

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


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def in_words(condition: Any, lang: str) -> str:
    """``{fact: amount, gte: 5000}`` → ``amount ≥ 5000``; nested all/any get brackets."""
    joins = _JOIN.get(lang, _JOIN["en"])
    if isinstance(condition, FactTest):
        operators = _OPERATORS.get(lang, _OPERATORS["en"])
        for name, word in operators.items():
            value = getattr(condition, name)
            if value is not None:
                return f"{condition.fact} {word} {_value(value)}"
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

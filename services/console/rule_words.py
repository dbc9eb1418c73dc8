"""Rule conditions and reason templates in words, in the reader's language (the Rules page, an
order's "lasts while …"): facts and their values by their labels (``配送方式 属于 [加急快递,
当日达]``), a yes/no fact as a phrase (``VIP flag is set``, ``是首单``), an operator and its
number joined by a no-break space so ``≥`` never ends a line without it."""

import re
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
# a number keeps its unit and an operator its value on one line
NO_BREAK = "\N{NO-BREAK SPACE}"
_JOIN = {
    "zh-CN": {
        "all": " 且 ",
        "any": " 或 ",
        "not": "并非 ",
        "window": f"{{m}}{NO_BREAK}分钟内至少{NO_BREAK}{{n}}{NO_BREAK}单",
    },
    "en": {
        "all": " and ",
        "any": " or ",
        "not": "not ",
        "window": f"at least {{n}}{NO_BREAK}orders within {{m}}{NO_BREAK}minutes",
    },
}

# a comparison in a reason template ("≥ 500,000"), whose number must not start a line of its own
_COMPARED_NUMBER = re.compile(r"([≥≤<>]) (?=[\d{])")


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
    label = labels.value(fact, str(value)) if labels is not None else str(value)
    # a value's label on one line ("Same day"); a value without one (notes' words) as it is
    return label.replace(" ", NO_BREAK) if label != str(value) else label


def reason_template(rule: Rule | CustomerRule, lang: str) -> str:
    """The rule's reason template in the language, each placeholder naming its fact in it
    (``{配送方式} 配送 → 紧急``), a compared number kept beside its operator."""
    words: str = rule.reasons.get(lang, rule.reason)  # type: ignore[call-overload]

    def named(match: Any) -> str:
        fact = rule.tag_from if match.group(1) == "value" else match.group(1)
        return "{" + fact_name(fact or match.group(1), lang) + "}"

    return _COMPARED_NUMBER.sub(rf"\1{NO_BREAK}", grouped_numbers(PLACEHOLDER.sub(named, words)))


def in_words(condition: Any, lang: str, *, opens_sentence: bool = True) -> str:
    """``{fact: amount, gte: 5000}`` → ``Order amount ≥ 5,000``; nested all/any get brackets.
    A condition opening a sentence (a table cell) starts with a capital; one in running text
    (``lasts while order status is …``) reads its labels in lower case, acronyms kept."""
    joins = _JOIN.get(lang, _JOIN["en"])
    if isinstance(condition, FactTest):
        return _fact_test(condition, lang, opens_sentence)
    if isinstance(condition, OrdersWithin):
        window = joins["window"].format(m=condition.orders_within_minutes, n=condition.at_least)
        return _cased(window, opens_sentence)
    if isinstance(condition, AllOf | AnyOf):
        parts = condition.all if isinstance(condition, AllOf) else condition.any
        glue = joins["all"] if isinstance(condition, AllOf) else joins["any"]
        words = [
            in_words(p, lang, opens_sentence=opens_sentence and i == 0) for i, p in enumerate(parts)
        ]
        return glue.join(
            f"({w})" if isinstance(p, AllOf | AnyOf) else w
            for p, w in zip(parts, words, strict=True)
        )
    if isinstance(condition, Not):
        inner = in_words(condition.not_, lang, opens_sentence=False)
        return _cased(joins["not"], opens_sentence) + f"({inner})"
    return ""


def _fact_test(test: FactTest, lang: str, opens_sentence: bool) -> str:
    fact = test.fact
    name = fact_name(fact, lang)
    if name != fact:  # a fact no label names shows as the rule file spells it, wherever it is
        name = _cased(name, opens_sentence)
    yes_no = _yes_no(test)
    if yes_no is not None and lang in _JOIN:
        phrases = label_file(lang)["yes_no"]
        phrase = (phrases.get("facts") or {}).get(fact, {}).get(yes_no)
        if phrase is not None:
            return _cased(str(phrase), opens_sentence)
        return str(phrases[yes_no]).format(fact=name)
    operators = _OPERATORS.get(lang, _OPERATORS["en"])
    for operator, word in operators.items():
        value = getattr(test, operator)
        if value is not None:
            operator = word.replace(" ", NO_BREAK)  # "is one of" on one line
            # "≥ 20,000" on one line; a list may start a line of its own ("[Pending, …]")
            gap = " " if isinstance(value, list | tuple) else NO_BREAK
            return f"{name} {operator}{gap}{_value(fact, value, lang)}"
    return ""


def _yes_no(test: FactTest) -> str | None:
    """``"true"`` for a test that a yes/no fact holds (``eq: true``, ``ne: false``), ``"false"``
    for one that it does not; None for any other test."""
    for wanted, negated in ((test.eq, False), (test.ne, True)):
        if isinstance(wanted, bool):
            return str(wanted != negated).lower()
    return None


def _cased(words: str, opens_sentence: bool) -> str:
    """Words as they read opening a sentence (a capital) or inside one: the first word in lower
    case unless it keeps its capitals (``VIP flag``, ``SKUs``). Scripts without case (Chinese)
    read the same either way."""
    if opens_sentence:
        return words[:1].upper() + words[1:]
    first = words.split(" ", 1)[0]
    if any(letter.isupper() for letter in first[1:]):  # VIP, SKUs, ID, WeChat
        return words
    return words[:1].lower() + words[1:]

"""Rule conditions read as sentences (``services/console/rule_words.py``): in English a label
inside a sentence is in lower case, acronyms kept; a yes/no fact reads as a phrase in each
language; an operator never ends a line without its value."""

import pytest

from services.console.rule_words import in_words, reason_template
from services.tagger.builtin_labels import label_file
from services.tagger.rules.conditions import KNOWN_FACTS, AllOf, AnyOf, FactTest, Not, OrdersWithin
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE

NB = "\N{NO-BREAK SPACE}"


def as_read(words: str) -> str:
    """The words as a reader reads them: a no-break space is a space."""
    return words.replace(NB, " ")


BIG = FactTest(fact="amount", gte=20000)
VIP = FactTest(fact="customer.vip", eq=True)
FIRST = FactTest(fact="customer.first_order", eq=True)
OPEN = FactTest.model_validate({"fact": "status", "in": ["pending", "processed"]})


def test_a_condition_opening_a_sentence_starts_with_a_capital_and_its_later_labels_do_not() -> None:
    spend = FactTest(fact="customer.lifetime_spend", gte=500000)
    vip_or_spend = AllOf(all=[AnyOf(any=[spend, VIP]), BIG])

    assert as_read(in_words(vip_or_spend, "en")) == (
        "(Lifetime spend ≥ 500,000 or VIP flag is set) and order amount ≥ 20,000"
    )
    assert as_read(in_words(AllOf(all=[BIG, OPEN]), "en")) == (
        "Order amount ≥ 20,000 and order status is one of [Pending, Processing]"
    )


def test_a_condition_inside_a_sentence_reads_its_labels_in_lower_case() -> None:
    assert as_read(in_words(OPEN, "en", opens_sentence=False)) == (
        "order status is one of [Pending, Processing]"
    )
    assert as_read(in_words(Not(not_=OPEN), "en", opens_sentence=False)) == (
        "not (order status is one of [Pending, Processing])"
    )
    assert as_read(in_words(Not(not_=OPEN), "en")).startswith("Not (order status")
    window = OrdersWithin(orders_within_minutes=10, at_least=5)
    assert as_read(in_words(window, "en")) == "At least 5 orders within 10 minutes"
    assert as_read(in_words(window, "en", opens_sentence=False)).startswith("at least 5")


@pytest.mark.parametrize(
    ("fact", "inside"),
    [
        ("customer.vip", "VIP flag"),
        ("skus", "SKUs"),
        ("customer.id", "customer ID"),
        ("amount_to_average", "amount ÷ average"),
        ("customer.order_count", "customer's orders"),
    ],
)
def test_acronyms_keep_their_capitals_inside_a_sentence(fact: str, inside: str) -> None:
    assert as_read(
        in_words(FactTest(fact=fact, exists=True), "en", opens_sentence=False)
    ).startswith(inside + " ")


def test_a_fact_no_label_names_keeps_its_rule_file_spelling_wherever_it_is() -> None:
    # a fact the rule engine learnt after the label files were written
    carrier = FactTest.model_construct(fact="shipping.carrier", eq="sf")

    assert as_read(in_words(carrier, "en")) == "shipping.carrier is sf"
    assert as_read(in_words(AllOf(all=[BIG, carrier]), "en")).endswith(
        " and shipping.carrier is sf"
    )


def test_chinese_reads_the_same_opening_a_sentence_or_inside_one() -> None:
    either = AllOf(all=[AnyOf(any=[VIP, BIG]), OPEN])
    expected = "(有 VIP 标记 或 金额 ≥ 20,000) 且 订单状态 属于 [待处理, 处理中]"

    assert as_read(in_words(either, "zh-CN")) == expected
    assert as_read(in_words(either, "zh-CN", opens_sentence=False)) == expected


@pytest.mark.parametrize(
    ("test", "en", "zh"),
    [
        (VIP, "VIP flag is set", "有 VIP 标记"),
        (FactTest(fact="customer.vip", eq=False), "VIP flag is not set", "无 VIP 标记"),
        (FactTest(fact="vip", ne=True), "VIP flag is not set", "无 VIP 标记"),
        (FIRST, "Customer's first order", "是首单"),
        (
            FactTest(fact="customer.first_order", ne=True),
            "Not the customer's first order",
            "不是首单",
        ),
    ],
)
def test_a_yes_no_fact_reads_as_a_phrase_in_each_language(test: FactTest, en: str, zh: str) -> None:
    assert (in_words(test, "en"), in_words(test, "zh-CN")) == (en, zh)


def test_a_yes_no_phrase_inside_a_sentence_follows_the_sentence() -> None:
    assert as_read(in_words(AllOf(all=[BIG, FIRST]), "en")) == (
        "Order amount ≥ 20,000 and customer's first order"
    )
    assert as_read(in_words(AllOf(all=[BIG, FIRST]), "zh-CN")) == "金额 ≥ 20,000 且 是首单"


def test_a_yes_no_fact_without_a_phrase_reads_yes_or_no_after_its_label() -> None:
    # a yes/no test of a fact the label files give no phrase for
    company = FactTest(fact="customer.company", eq=True)

    assert as_read(in_words(company, "en")) == "Company: yes"
    assert as_read(in_words(AllOf(all=[BIG, company]), "en")).endswith(" and company: yes")
    assert as_read(in_words(FactTest(fact="customer.company", eq=False), "zh-CN")) == "公司：否"


@pytest.mark.parametrize("code", ["en", "zh-CN"])
def test_every_yes_no_phrase_names_a_known_fact_and_says_both_answers(code: str) -> None:
    phrases = label_file(code)["yes_no"]
    assert {"true", "false"} <= set(phrases)
    for fact, said in phrases["facts"].items():
        assert fact in KNOWN_FACTS
        assert set(said) == {"true", "false"}, fact
    assert set(phrases["facts"]) == set(label_file("en")["yes_no"]["facts"])


def test_an_operator_keeps_its_value_and_a_value_its_words_on_one_line() -> None:
    """No-break spaces between an operator and its value, inside an operator (``is one of``) and
    inside a value's label (``Same day``); a list may start a line, and the spaces between facts
    break as before."""
    fast = FactTest.model_validate({"fact": "shipping.method", "in": ["express", "same_day"]})

    assert in_words(BIG, "en") == f"Order amount ≥{NB}20,000"
    assert in_words(BIG, "zh-CN") == f"金额 ≥{NB}20,000"
    assert in_words(fast, "en") == f"Shipping method is{NB}one{NB}of [Express, Same{NB}day]"
    assert in_words(fast, "zh-CN") == "配送方式 属于 [加急快递, 当日达]"
    assert in_words(AllOf(all=[BIG, OPEN]), "zh-CN") == (
        f"金额 ≥{NB}20,000 且 订单状态 属于 [待处理, 处理中]"
    )
    window = OrdersWithin(orders_within_minutes=10, at_least=5)
    assert in_words(window, "zh-CN") == f"10{NB}分钟内至少{NB}5{NB}单"
    # words a rule looks for in notes are data, not labels: they break where they may
    notes = FactTest(fact="notes", contains=["call me", "asap"])
    assert in_words(notes, "en") == "Notes contains [call me, asap]"


def test_a_reason_templates_compared_number_stays_beside_its_operator() -> None:
    rules = {rule.id: rule for rule in load_rules(DEFAULT_RULES_FILE).rules}

    assert reason_template(rules["customer.vip-by-spend"], "en").endswith(f"≥{NB}500,000 → VIP")
    assert f"≥{NB}20,000" in reason_template(rules["risk.new-customer-large-order"], "zh-CN")
    # other spaces break as before
    assert reason_template(rules["priority.fast-shipping"], "en") == (
        "{Shipping method} shipping → urgent"
    )

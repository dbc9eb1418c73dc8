"""Rule facts by their labels (``services/console/labels/*.yaml``, section ``facts``): every fact a
rule may name has one in each language, so the Rules page reads in words in English as in
Chinese (``Order amount ≥ 5,000``, ``金额 ≥ 5,000``); a fact no label file knows shows as
itself."""

import re

import pytest

from services.console.i18n import LANGUAGES, language
from services.console.rule_table import customer_rule_rows, rule_rows
from services.console.rule_words import fact_name, in_words, reason_template
from services.tagger.builtin_labels import label_file
from services.tagger.rules.conditions import KNOWN_FACTS, AllOf, FactTest
from services.tagger.rules.customer_facts import CUSTOMER_FACT_NAMES, ITEM_FACT_NAMES
from services.tagger.rules.facts import FACT_NAMES
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from tests.unit.test_conditions_in_sentences import as_read

# what a reason template may name besides facts: the value a rule names its tag from
NAMEABLE = KNOWN_FACTS | {"value"}
# a rule file's spelling of a fact (snake_case or dotted), which no label reads like
RULE_FILE_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:[._][a-z0-9]+)+\b")


def _fact_labels(code: str) -> dict[str, str]:
    return {name: str(label) for name, label in (label_file(code).get("facts") or {}).items()}


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_fact_a_rule_may_name_has_a_label_and_no_label_names_an_unknown_fact(
    code: str,
) -> None:
    labelled = set(_fact_labels(code))
    assert sorted(NAMEABLE - labelled) == [], f"facts without a {code} label"
    assert sorted(labelled - NAMEABLE) == [], f"{code} labels of no fact"


def test_both_languages_label_the_same_facts() -> None:
    zh, en = (set(_fact_labels(code)) for code in ("zh-CN", "en"))
    assert zh == en


@pytest.mark.parametrize("code", LANGUAGES)
def test_no_two_facts_one_kind_of_rule_may_name_share_a_label(code: str) -> None:
    """Order rules name order facts; customer rules customer and per-item facts: within each,
    two facts under one label would be one fact to the reader."""
    labels = _fact_labels(code)
    customer_facts = {
        *CUSTOMER_FACT_NAMES,
        *(n for names in ITEM_FACT_NAMES.values() for n in names),
    }
    for kind in (set(FACT_NAMES), customer_facts):
        shown = [labels[name] for name in sorted(kind)]
        assert len(set(shown)) == len(shown), sorted(s for s in shown if shown.count(s) > 1)


def test_a_condition_names_its_facts_in_english_words() -> None:
    big = FactTest(fact="amount", gte=5000)
    fast = FactTest.model_validate({"fact": "shipping.method", "in": ["express", "same_day"]})

    assert as_read(in_words(big, "en")) == "Order amount ≥ 5,000"
    assert as_read(in_words(AllOf(all=[big, fast]), "en")) == (
        "Order amount ≥ 5,000 and shipping method is one of [Express, Same day]"
    )
    assert as_read(in_words(FactTest(fact="orders_365d", gte=5), "en")) == (
        "Orders in the last 365 days ≥ 5"
    )


def test_a_fact_no_label_file_knows_shows_as_itself() -> None:
    assert fact_name("shipping.method", "en") == "Shipping method"
    assert fact_name("shipping.carrier", "en") == "shipping.carrier"
    assert fact_name("shipping.carrier", "zh-CN") == "shipping.carrier"
    assert fact_name("shipping.method", "fr") == "shipping.method"  # no label file


def test_english_reason_templates_name_their_facts_in_words() -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    by_id = {rule.id: rule for rule in [*rules.rules, *rules.customer_rules]}

    assert as_read(reason_template(by_id["customer.high-value"], "en")) == (
        "spend over 365 days {Spend in the last 365 days} > 100,000 → high-value customer"
    )
    assert reason_template(by_id["status"], "en") == "order status is {Order status}"


def test_the_english_rules_page_shows_no_rule_file_names() -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    en = language("en")
    rows = [*rule_rows(rules, en, {}), *customer_rule_rows(rules, en, {})]
    for row in rows:
        for column in ("tag_label", "when", "holds_while", "reason"):
            shown = row.get(column, "")
            assert not RULE_FILE_NAME.search(shown), (row["id"], column, shown)

"""Money and the numbers of reasons as people read them: one form on every console page
(thousands separators, two decimals, the currency) and in rendered reasons and conditions."""

from decimal import Decimal

import pytest

from services.console.rule_words import in_words, reason_template
from services.tagger.builtin_labels import reason_labels
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.money import grouped_numbers, money_text

RULES = load_rules(DEFAULT_RULES_FILE)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("179382.00", "CNY", "179,382.00 CNY"),
        (Decimal("558"), "CNY", "558.00 CNY"),
        (1937, None, "1,937.00"),
        ("0.5", "USD", "0.50 USD"),
    ],
)
def test_money_reads_with_separators_two_decimals_and_the_currency(
    amount: object, currency: str | None, shown: str
) -> None:
    assert money_text(amount, currency) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "365 天消费 179382.00（≥ 20000）→ 高消费客户",
            "365 天消费 179,382.00（≥ 20,000）→ 高消费客户",
        ),
        ("first order of 26000.00 CNY ≥ 20000", "first order of 26,000.00 CNY ≥ 20,000"),
        # identifiers, dates, times, short and already grouped numbers stay as they are
        ("客户 SIM-C011256 的首单", "客户 SIM-C011256 的首单"),
        (
            "SIM-20261127-203433-005364 2026-11-27 20:35",
            "SIM-20261127-203433-005364 2026-11-27 20:35",
        ),
        ("EARBUDS-398 0.0 天 ≤ 14, 1,000", "EARBUDS-398 0.0 天 ≤ 14, 1,000"),
    ],
)
def test_numbers_in_a_sentence_are_grouped_and_identifiers_are_not(text: str, shown: str) -> None:
    assert grouped_numbers(text) == shown


def test_a_customer_reason_shows_its_amount_and_threshold_grouped_in_each_language() -> None:
    templates = ReasonTemplates(RULES, customer=True)

    for code, expected in (
        ("zh-CN", "365 天消费 179,382.00（≥ 20,000）→ 高消费客户"),
        ("en", "spend 179,382.00 over 365 days (≥ 20,000) → high spender"),
    ):
        shown = templates.in_language(code, reason_labels(code))
        assert shown.reason("behaviour.high-spender", 1, ["179382.00"]) == expected


def test_identifiers_in_a_reason_are_shown_as_they_are_and_quantities_grouped() -> None:
    """A SKU or a customer id may be all digits (leading zeros too): never grouped like an
    amount, or staff would search for an id that does not exist."""
    templates = ReasonTemplates(RULES, customer=True).in_language("en", reason_labels("en"))
    orders = ReasonTemplates(RULES).in_language("zh-CN", reason_labels("zh-CN"))

    product = templates.reason("preference.product", 1, ["6901234567890", "1200"])
    new_customer = orders.reason("customer.new", 1, ["0012345"])

    assert product is not None
    assert "6901234567890" in product
    assert "1,200" in product
    assert new_customer is not None
    assert "0012345" in new_customer
    assert grouped_numbers("code 00012345") == "code 00012345"


def test_rule_conditions_and_templates_group_their_thresholds() -> None:
    vip = next(rule for rule in RULES.rules if rule.id == "customer.vip-by-spend")

    assert "≥\N{NO-BREAK SPACE}500,000" in in_words(vip.when, "zh-CN")
    assert "≥\N{NO-BREAK SPACE}500,000" in reason_template(vip, "en")

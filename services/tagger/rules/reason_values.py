"""A reason's values as people read them: amounts and counts grouped (20,000), a number of days
in whole days, a share as a percentage; identifiers (an order number, a customer id, a SKU) as
they are. For reasons shown in a reader's language and the Rules page's conditions."""

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from shared.money import grouped_numbers

# Words naming a fact whose values are quantities (amounts, counts, days): shown grouped
# (20,000). No identifier's name holds one: an order number, a customer id or a SKU, all-digit
# ones too, is shown as it is.
_QUANTITY_WORDS = ("amount", "spend", "count", "orders", "total", "average", "days", "hours")
# Facts counted in days that people read in whole days ("no order for 94 days")
_WHOLE_DAYS = ("days_since_", "days_after_")
_SHARE = "share"  # a share of 0-1, read as a percentage


def is_quantity(fact: str | None) -> bool:
    """Whether ``fact``'s values are quantities people read grouped (``customer.spend_365d``,
    ``sku.orders``), not identifiers (``customer.id``, ``sku``, ``order_no``)."""
    return fact is not None and any(word in fact for word in _QUANTITY_WORDS)


def is_whole_days(fact: str | None) -> bool:
    return fact is not None and any(word in fact for word in _WHOLE_DAYS)


def is_share(fact: str | None) -> bool:
    return fact is not None and _SHARE in fact


def for_people(fact: str | None, value: str, *, round_up: bool = False) -> str:
    """A rendered reason value as a reader's sentence shows it: a number of days in whole days
    (``round_up`` where its rule tests it against a lower bound, so "> 90" never reads 90;
    down otherwise, as people count days gone by), a share as a whole percentage, quantities
    grouped. A value that is not a number is shown as it is (``—`` for none)."""
    if not (is_share(fact) or is_whole_days(fact)):
        return grouped_numbers(value) if is_quantity(fact) else value
    try:
        number = Decimal(value)
        if not number.is_finite():
            return value
        if is_share(fact):
            return f"{_plain((number * 100).quantize(Decimal(1), ROUND_HALF_UP))}%"
        return (
            f"{_plain(number.quantize(Decimal(1), ROUND_CEILING if round_up else ROUND_FLOOR)):,}"
        )
    except ArithmeticError:  # not a number, or one too large to round
        return value


def threshold_text(fact: str, value: Any) -> str:
    """A rule's bound as written (the Rules page): a share as a percentage with the decimals it
    needs (0.755 → 75.5%), a quantity grouped (20,000), anything else as it is."""
    if is_share(fact):
        return f"{_plain((Decimal(str(value)) * 100).normalize()):f}%"
    return f"{value:,}" if is_quantity(fact) else str(value)


def _plain(number: Decimal) -> Decimal:
    """No negative zero (-0.1 days floors to -1 but rounds to -0 as a share)."""
    return number + 0 if number == 0 else number

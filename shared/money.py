"""Money in whole cents, the stored form wherever amounts are summed (Redis figures, MongoDB)."""

import re
from decimal import Decimal


def to_cents(amount: Decimal) -> int:
    """Exact for every ``Money`` (at most two decimals, checked at the boundary)."""
    return int((amount * 100).to_integral_exact())


def from_cents(cents: int | float | str | bytes) -> Decimal:
    return Decimal(int(cents)) / 100


def cents_text(cents: int) -> str:
    """Cents as the decimal string every answer and export shows (``"1234.50"``)."""
    return f"{cents / 100:.2f}"


def money_text(amount: Decimal | float | int | str, currency: str | None = None) -> str:
    """An amount as people read it, the one form of money on every console page: thousands
    separators, two decimals, then the currency (``"179,382.00 CNY"``; the page's
    ``OT.money`` is its twin)."""
    text = f"{Decimal(str(amount)):,.2f}"
    return f"{text} {currency}" if currency else text


# a number of four or more digits standing alone: not part of an order number, a SKU, a date,
# a time or a number already grouped ("SIM-20261127-005364", "2026-11-27", "EARBUDS-398"), and
# not one with a leading zero (a code, not a quantity). Run over words, never over an
# identifier's value (``rules.reasons.is_quantity``).
_BARE_NUMBER = re.compile(r"(?<![0-9A-Za-z_.,:/\-])([1-9]\d{3,})(\.\d+)?(?![0-9A-Za-z_,:/\-]|\.\d)")


def grouped_numbers(text: str) -> str:
    """Thousands separators in the numbers of a sentence (a rule's reason or condition), so
    "365 天消费 179382.00（≥ 20000）" reads "179,382.00（≥ 20,000）" as amounts do elsewhere."""
    return _BARE_NUMBER.sub(lambda m: f"{int(m.group(1)):,}{m.group(2) or ''}", text)

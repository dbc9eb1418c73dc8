"""Money in whole cents, the stored form wherever amounts are summed (Redis figures, MongoDB)."""

from decimal import Decimal


def to_cents(amount: Decimal) -> int:
    """Exact for every ``Money`` (at most two decimals, checked at the boundary)."""
    return int((amount * 100).to_integral_exact())


def from_cents(cents: int | float | str | bytes) -> Decimal:
    return Decimal(int(cents)) / 100


def cents_text(cents: int) -> str:
    """Cents as the decimal string every answer and export shows (``"1234.50"``)."""
    return f"{cents / 100:.2f}"

"""Money in whole cents, the stored form wherever amounts are summed (Redis figures, MongoDB)."""

from decimal import Decimal


def to_cents(amount: Decimal) -> int:
    """Exact: an amount with more than two decimals is refused rather than rounded."""
    return int((amount * 100).to_integral_exact())


def from_cents(cents: int | float | str | bytes) -> Decimal:
    return Decimal(int(cents)) / 100

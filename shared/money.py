"""Money in whole cents, the stored form wherever amounts are summed (Redis figures, MongoDB)."""

from decimal import Decimal


def to_cents(amount: Decimal) -> int:
    """Exact for every ``Money`` (at most two decimals, checked at the boundary)."""
    return int((amount * 100).to_integral_exact())


def from_cents(cents: int | float | str | bytes) -> Decimal:
    return Decimal(int(cents)) / 100

"""The facts a customer rule can test: the customer's live figures as of an evaluation time.

Order rules see the figures as they stood when an order was counted (``facts.py``); customer
rules see the figures now, so a time that passes changes them (a customer lapses with no order
at all). Per-category and per-product facts come one item at a time to rules with ``each``.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.money import from_cents

SECONDS_PER_DAY = 86_400
PREFERENCE_WINDOW_DAYS = 365
WINDOWS = (30, 90, 365)

CUSTOMER_FACT_NAMES: dict[str, str] = {
    "orders_total": "orders held (placed and not cancelled or returned)",
    "spend_total": "spend of the orders held",
    **{
        f"orders_{d}d": f"orders held placed in the last {d} days (counts up to 100)"
        for d in WINDOWS
    },
    **{f"spend_{d}d": f"spend of orders held placed in the last {d} days" for d in WINDOWS},
    "days_since_last_order": "days since the last order (any order, cancelled ones included)",
    "days_since_first_order": "days since the first order",
    "average_days_between_orders": "mean days between the recent orders held (None under 2)",
    "vip": "explicit VIP flag from the CRM (latest order)",
    "company": "company name (latest order)",
}
ITEM_FACT_NAMES: dict[str, dict[str, str]] = {
    "category": {
        "category": "the product category (lower case)",
        "category.orders_365d": "orders held with this category in the last 365 days",
        "category.spend_365d": "line spend in this category in the last 365 days",
        "category.spend_share_365d": "share (0-1) of the customer's line spend over 365 days",
    },
    "sku": {
        "sku": "the product's SKU",
        "sku.orders": "orders held with this SKU",
        "sku.days_after_first_sale": "days from the SKU's first sale to this customer's first buy",
    },
}


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """One customer's figures as Redis holds them now (money in cents, times in epoch s)."""

    orders: int = 0
    spend_cents: int = 0
    first_order_at: float | None = None
    last_order_at: float | None = None
    spend_by_day: dict[int, int] = field(default_factory=dict)
    recent_order_times: tuple[float, ...] = ()
    # (day, category) -> (orders, line cents)
    by_category: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    # sku -> (orders held, first bought at)
    products: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """What the CRM last said about the customer (from the newest order seen)."""

    name: str | None = None
    company: str | None = None
    vip: bool = False


def customer_facts(figures: LiveFigures, profile: CustomerProfile, now: float) -> dict[str, Any]:
    """The customer-level facts at ``now``."""
    today = int(now // SECONDS_PER_DAY)
    facts: dict[str, Any] = {
        "orders_total": figures.orders,
        "spend_total": from_cents(figures.spend_cents),
        "days_since_last_order": _days(now, figures.last_order_at),
        "days_since_first_order": _days(now, figures.first_order_at),
        "average_days_between_orders": _mean_gap_days(figures.recent_order_times),
        "vip": profile.vip,
        "company": profile.company,
    }
    for window in WINDOWS:
        start = now - window * SECONDS_PER_DAY
        facts[f"orders_{window}d"] = sum(1 for t in figures.recent_order_times if t > start)
        facts[f"spend_{window}d"] = from_cents(
            sum(c for d, c in figures.spend_by_day.items() if today - window < d <= today)
        )
    return facts


def category_items(figures: LiveFigures, now: float) -> list[dict[str, Any]]:
    """Per category bought in the preference window: its orders, spend and share of spend."""
    today = int(now // SECONDS_PER_DAY)
    totals: dict[str, list[int]] = {}
    for (day, category), (orders, cents) in figures.by_category.items():
        if today - PREFERENCE_WINDOW_DAYS < day <= today:
            entry = totals.setdefault(category, [0, 0])
            entry[0] += orders
            entry[1] += cents
    all_cents = sum(cents for _, cents in totals.values())
    return [
        {
            "category": category,
            "category.orders_365d": orders,
            "category.spend_365d": from_cents(cents),
            "category.spend_share_365d": (
                (Decimal(cents) / Decimal(all_cents)).quantize(Decimal("0.0001"))
                if all_cents > 0
                else Decimal(0)
            ),
        }
        for category, (orders, cents) in sorted(totals.items())
        if orders > 0
    ]


def sku_items(figures: LiveFigures, first_sales: dict[str, float]) -> list[dict[str, Any]]:
    """Per SKU the customer holds an order with: orders, and how soon after its first sale."""
    items = []
    for sku, (orders, first_bought) in sorted(figures.products.items()):
        first_sale = first_sales.get(sku)
        items.append(
            {
                "sku": sku,
                "sku.orders": orders,
                "sku.days_after_first_sale": (
                    max(first_bought - first_sale, 0.0) / SECONDS_PER_DAY
                    if first_sale is not None
                    else None
                ),
            }
        )
    return items


def _days(now: float, then: float | None) -> float | None:
    """Not rounded: a rule tests the exact time ("> 90" holds one second past 90 days, when the
    review comes); reasons show whole days (``customer_engine``)."""
    return None if then is None else (now - then) / SECONDS_PER_DAY


def _mean_gap_days(times: tuple[float, ...]) -> float | None:
    if len(times) < 2:
        return None
    ordered = sorted(times)
    return round((ordered[-1] - ordered[0]) / (len(ordered) - 1) / SECONDS_PER_DAY, 1)

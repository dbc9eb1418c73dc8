"""The facts a rule can test: an order's own fields plus the customer's figures as of that order.

Facts are a flat mapping from dotted names (``shipping.method``, ``customer.spend_365d``) to
plain values. Rules may only name facts listed in ``FACT_NAMES``, so a typo in a rule file is
refused at load time instead of silently never matching.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.tagger.rules.regions import region_of
from shared.models import Order, OrderStatus, OrderType
from shared.money import from_cents, to_cents


@dataclass(frozen=True, slots=True)
class FiguresSnapshot:
    """The customer's figures as they stood when this order was counted (Redis keeps it per order,
    so replaying the order sees exactly the same figures)."""

    prior_order_count: int = 0
    prior_lifetime_spend: Decimal = Decimal("0")
    spend_365d: Decimal = Decimal("0")  # includes this order
    recent_order_times: tuple[float, ...] = field(default=())  # prior orders, epoch seconds
    first_order_at: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The stored form (Redis contribution and MongoDB order document): money in cents."""
        return {
            "prior_order_count": self.prior_order_count,
            "prior_lifetime_cents": to_cents(self.prior_lifetime_spend),
            "spend_365d_cents": to_cents(self.spend_365d),
            "recent_order_times": list(self.recent_order_times),
            "first_order_at": self.first_order_at,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "FiguresSnapshot":
        recent = data.get("recent_order_times")  # Lua's cjson writes an empty list as {}
        return cls(
            prior_order_count=int(data["prior_order_count"]),
            prior_lifetime_spend=from_cents(data["prior_lifetime_cents"]),
            spend_365d=from_cents(data["spend_365d_cents"]),
            recent_order_times=tuple(float(t) for t in recent) if isinstance(recent, list) else (),
            first_order_at=data.get("first_order_at"),
        )


# name → description (shown by `ordertag rules check` and in docs/rules.md)
FACT_NAMES: dict[str, str] = {
    "order_no": "the order number",
    "status": "pending, processed, shipped, completed, cancelled or returned",
    "order_type": "new, repeat or return (given by the CRM, else derived from history)",
    "channel": "sales channel",
    "notes": "free-text notes",
    "sales_rep": "sales representative",
    "amount": "order total (Decimal)",
    "currency": "ISO currency code",
    "categories": "product categories of the order lines (list)",
    "skus": "SKUs of the order lines (list)",
    "payment.method": "payment method",
    "shipping.method": "standard, express, same_day or pickup",
    "shipping.province": "province as given",
    "region": "north-china, east-china, ... derived from the province",
    "hours_to_requested_delivery": "hours from order creation to the requested delivery time",
    "customer.id": "customer id",
    "customer.vip": "explicit VIP flag from the CRM",
    "customer.company": "company name",
    "customer.order_count": "orders counted for this customer, this one included",
    "customer.prior_order_count": "orders counted before this one",
    "customer.first_order": "true when this is the customer's first order",
    "customer.lifetime_spend": "lifetime spend, this order included",
    "customer.spend_365d": "spend over the 365 days up to this order, this order included",
    "customer.average_amount": "average of the customer's earlier orders (None without)",
    "amount_to_average": "this order's amount divided by the customer's earlier average",
}


def order_facts(
    order: Order, figures: FiguresSnapshot, status: OrderStatus | None = None
) -> dict[str, Any]:
    """Flatten an order and its figures into the facts rules test."""
    status = status or order.status
    prior_count = figures.prior_order_count
    average = figures.prior_lifetime_spend / prior_count if prior_count else None
    amount = order.pricing.total
    return {
        "order_no": order.order_no,
        "status": status.value,
        "order_type": _order_type(order, status, prior_count).value,
        "channel": order.channel,
        "notes": order.notes,
        "sales_rep": order.sales_rep,
        "amount": amount,
        "currency": order.pricing.currency,
        "categories": sorted({line.category.strip().lower() for line in order.lines}),
        "skus": [line.sku for line in order.lines],
        "payment.method": order.payment.method.value if order.payment else None,
        "shipping.method": order.shipping.method.value,
        "shipping.province": order.shipping.province,
        "region": region_of(order.shipping.province),
        "hours_to_requested_delivery": _hours_between(
            order.created_at, order.requested_delivery_at
        ),
        "customer.id": order.customer.id,
        "customer.vip": order.customer.vip,
        "customer.company": order.customer.company,
        "customer.order_count": prior_count + 1,
        "customer.prior_order_count": prior_count,
        "customer.first_order": prior_count == 0,
        "customer.lifetime_spend": figures.prior_lifetime_spend + amount,
        "customer.spend_365d": figures.spend_365d,
        "customer.average_amount": average,
        "amount_to_average": (amount / average) if average else None,
        # not a rule fact: the reference time of velocity windows
        "_created_at": order.created_at.timestamp(),
        "_recent_order_times": figures.recent_order_times,
    }


def _order_type(order: Order, status: OrderStatus, prior_count: int) -> OrderType:
    if order.order_type is not None:
        return order.order_type
    if status is OrderStatus.RETURNED:
        return OrderType.RETURN
    return OrderType.REPEAT if prior_count else OrderType.NEW


def _hours_between(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return (end - start).total_seconds() / 3600

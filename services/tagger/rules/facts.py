"""The facts a rule can test: an order's own fields plus the customer's figures as of that order.

Facts are a flat mapping from dotted names (``shipping.method``, ``customer.spend_365d``) to
plain values. Rules may only name facts listed in ``FACT_NAMES``, so a typo in a rule file is
refused at load time instead of silently never matching.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.tagger.rules.regions import region_of
from shared.models import Order, OrderStatus, OrderType, ShippingMethod
from shared.money import from_cents, to_cents
from shared.stored_order import figures_record, order_as_ingested


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
        return cls(  # an order's stored figures leave out what is zero or empty
            prior_order_count=int(data.get("prior_order_count", 0)),
            prior_lifetime_spend=from_cents(data.get("prior_lifetime_cents", 0)),
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
        **_figure_facts(figures, amount),
        # not a rule fact: the reference time of velocity windows
        "_created_at": order.created_at.timestamp(),
    }


# The facts that are a stored order's own data or its figures, read as they are (or summed):
# a reason's values quoting only these (and the tag's own value) are not stored with its tag,
# and read again from the order (``shared.stored_tags.derived_args``). Facts a rule of code
# works out (a province's region, an order's type, ratios, hours) are stored as values: a later
# release may work them out otherwise.
QUOTED_AS_STORED = frozenset(
    {
        "order_no",
        "status",
        "channel",
        "notes",
        "sales_rep",
        "amount",
        "currency",
        "payment.method",
        "shipping.method",
        "shipping.province",
        "customer.id",
        "customer.vip",
        "customer.company",
        "customer.order_count",
        "customer.prior_order_count",
        "customer.lifetime_spend",
        "customer.spend_365d",
    }
)

# What ``stored_order_facts`` reads of a stored order (its unit test reads through exactly this
# projection): a reader can ask MongoDB for these alone (no names, e-mails, addresses, prices)
STORED_ORDER_FIELDS = (
    "order_no",
    "created_at",
    "requested_delivery_at",
    "channel",
    "notes",
    "sales_rep",
    "order_type",
    "customer.id",
    "customer.vip",
    "customer.company",
    "lines.sku",
    "lines.category",
    "pricing.total",
    "pricing.currency",
    "payment.method",
    "shipping.method",
    "shipping.province",
)


def _figure_facts(figures: FiguresSnapshot, amount: Decimal) -> dict[str, Any]:
    """The facts an order takes from its customer's figures as they stood before it (one
    definition for live orders and stored ones)."""
    prior_count = figures.prior_order_count
    average = figures.prior_lifetime_spend / prior_count if prior_count else None
    return {
        "customer.order_count": prior_count + 1,
        "customer.prior_order_count": prior_count,
        "customer.first_order": prior_count == 0,
        "customer.lifetime_spend": figures.prior_lifetime_spend + amount,
        "customer.spend_365d": figures.spend_365d,
        "customer.average_amount": average,
        "amount_to_average": (amount / average) if average else None,
        "_recent_order_times": figures.recent_order_times,
    }


def stored_order_facts(
    order: Mapping[str, Any], figures: FiguresSnapshot, status: OrderStatus
) -> dict[str, Any]:
    """``order_facts`` of an order as the tagger stores it (``Order.model_dump(mode="json",
    exclude_defaults=True, exclude_none=True)``, validated when it was written), read straight
    from the document: the same facts, without re-validating a whole ``Order`` (a replay of
    stored history spends most of its time there otherwise). Defaults are those of ``Order``."""
    prior_count = figures.prior_order_count
    pricing = order["pricing"]
    amount = Decimal(pricing["total"])
    lines = order["lines"]
    shipping = order.get("shipping") or {}
    payment = order.get("payment")
    customer = order["customer"]
    province = shipping.get("province")
    created_at = stored_time(order["created_at"])
    requested = order.get("requested_delivery_at")
    order_type = order.get("order_type")
    return {
        "order_no": order["order_no"],
        "status": status.value,
        "order_type": order_type or _derived_type(status, prior_count).value,
        "channel": order.get("channel", "web"),
        "notes": order.get("notes", ""),
        "sales_rep": order.get("sales_rep"),
        "amount": amount,
        "currency": pricing.get("currency", "CNY"),
        "categories": sorted({line["category"].strip().lower() for line in lines}),
        "skus": [line["sku"] for line in lines],
        "payment.method": payment["method"] if payment else None,
        "shipping.method": shipping.get("method", ShippingMethod.STANDARD.value),
        "shipping.province": province,
        "region": region_of(province),
        "hours_to_requested_delivery": _hours_between(
            created_at, None if requested is None else stored_time(requested)
        ),
        "customer.id": customer["id"],
        "customer.vip": customer.get("vip", False),
        "customer.company": customer.get("company"),
        **_figure_facts(figures, amount),
        "_created_at": created_at.timestamp(),
    }


def facts_of_stored(document: Mapping[str, Any]) -> dict[str, Any]:
    """``order_facts`` of an order document as the tagger stores it (either form of its
    ``order``; ``shared/stored_order.py``), with the figures it was tagged with."""
    return stored_order_facts(
        order_as_ingested(dict(document)),
        FiguresSnapshot.from_record(figures_record(document["figures"])),
        OrderStatus(document["status"]),
    )


def stored_time(value: str | datetime) -> datetime:
    """A stored time: RFC 3339 text (JSON mode) or, from BSON, a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _order_type(order: Order, status: OrderStatus, prior_count: int) -> OrderType:
    if order.order_type is not None:
        return order.order_type
    return _derived_type(status, prior_count)


def _derived_type(status: OrderStatus, prior_count: int) -> OrderType:
    if status is OrderStatus.RETURNED:
        return OrderType.RETURN
    return OrderType.REPEAT if prior_count else OrderType.NEW


def _hours_between(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return (end - start).total_seconds() / 3600

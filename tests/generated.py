"""Seeded streams of valid orders for integration tests, with an independent expectation of the
figures each customer ends with."""

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from shared.events import OrderCreated, StatusChanged
from shared.models import Order, OrderStatus
from tests.factories import BASE_TIME, order_payload

PROVINCES = ["北京", "上海", "浙江", "广东", "四川", "湖北", "辽宁", "陕西", "香港"]
METHODS = ["standard", "standard", "standard", "express", "same_day", "pickup"]
CATEGORIES = ["electronics", "books", "apparel", "home", "toys"]


@dataclass
class Expected:
    order_count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lifetime_spend: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    prior_orders: dict[str, int] = field(default_factory=dict)  # order_no -> earlier orders


def order_stream(
    count: int, customers: int, seed: int, prefix: str
) -> tuple[list[OrderCreated | StatusChanged], Expected]:
    """``count`` new orders from ``customers`` customers, in time order, plus a cancellation for
    about one order in ten (keyed like the order, so it follows it on the same partition)."""
    rng = random.Random(seed)
    expected = Expected()
    events: list[OrderCreated | StatusChanged] = []
    for index in range(count):
        customer_id = f"{prefix}-C{rng.randrange(customers)}"
        total = Decimal(rng.choice([rng.randint(10, 900), rng.randint(1000, 60000)])) + Decimal(
            "0.50"
        )
        order = Order.model_validate(
            order_payload(
                f"{prefix}-{index:06d}",
                customer={"id": customer_id, "name": "客户"},
                pricing={"total": str(total)},
                shipping={"method": rng.choice(METHODS), "province": rng.choice(PROVINCES)},
                lines=[
                    {
                        "sku": "S1",
                        "name": "n",
                        "category": rng.choice(CATEGORIES),
                        "quantity": 1,
                        "unit_price": str(total),
                    }
                ],
                created_at=(BASE_TIME + timedelta(minutes=index * 7)).isoformat(),
            )
        )
        events.append(OrderCreated(order=order))
        expected.prior_orders[order.order_no] = expected.order_count[customer_id]
        expected.order_count[customer_id] += 1
        expected.lifetime_spend[customer_id] += total
        if rng.random() < 0.1:
            events.append(
                StatusChanged(
                    order_no=order.order_no, customer_id=customer_id, status=OrderStatus.CANCELLED
                )
            )
            expected.order_count[customer_id] -= 1
            expected.lifetime_spend[customer_id] -= total
    return events, expected

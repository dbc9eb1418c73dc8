"""Deterministic order payloads for benchmarks (a realistic stream comes from the simulator)."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

PROVINCES = ["北京", "上海", "浙江", "广东", "四川", "湖北", "江苏", "山东", "河南", "陕西"]
METHODS = ["standard"] * 6 + ["express"] * 3 + ["same_day"]
CATEGORIES = ["electronics", "books", "apparel", "home", "beauty", "toys", "food"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def order_payloads(
    count: int, prefix: str, customers: int = 2_000, seed: int = 1
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    payloads = []
    for index in range(count):
        quantity = rng.randint(1, 4)
        unit = rng.choice([19, 49, 99, 299, 999, 4999])
        payloads.append(
            {
                "order_no": f"{prefix}-{index:08d}",
                "customer": {"id": f"{prefix}-C{rng.randrange(customers)}", "name": "客户"},
                "lines": [
                    {
                        "sku": f"SKU-{unit}",
                        "name": "item",
                        "category": rng.choice(CATEGORIES),
                        "quantity": quantity,
                        "unit_price": f"{unit}.00",
                    }
                ],
                "pricing": {"currency": "CNY", "total": f"{quantity * unit}.00"},
                "shipping": {"method": rng.choice(METHODS), "province": rng.choice(PROVINCES)},
                "created_at": (START + timedelta(seconds=index * 3)).isoformat(),
            }
        )
    return payloads

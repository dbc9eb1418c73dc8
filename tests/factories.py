"""Valid orders for tests, built from plain dicts so a test can break exactly one field."""

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from services.tagger.rules.schema import CatalogTag
from shared.models import Order

BASE_TIME = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def order_payload(order_no: str = "SO-1", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "order_no": order_no,
        "customer": {"id": "C-1", "name": "张伟", "email": "zw@example.com", "vip": False},
        "lines": [
            {
                "sku": "PH-1",
                "name": "Phone",
                "category": "electronics",
                "quantity": 1,
                "unit_price": "100.00",
            },
        ],
        "pricing": {"currency": "CNY", "total": "100.00"},
        "status": "pending",
        "shipping": {"method": "standard", "province": "浙江", "city": "杭州"},
        "channel": "web",
        "notes": "",
        "created_at": BASE_TIME.isoformat(),
    }
    for key, value in overrides.items():
        payload[key] = copy.deepcopy(value)
    return payload


def make_order(order_no: str = "SO-1", **overrides: Any) -> Order:
    return Order.model_validate(order_payload(order_no, **overrides))


def at(minutes: float) -> str:
    """An ISO time ``minutes`` after BASE_TIME."""
    return (BASE_TIME + timedelta(minutes=minutes)).isoformat()


def catalog_tag(name: str = "gift", **fields: Any) -> CatalogTag:
    return CatalogTag.model_validate({"name": name, **fields})


def customer_order(
    order_no: str,
    customer_id: str,
    when: datetime,
    lines: list[tuple[str, str, str]] | None = None,
    name: str = "李娜",
) -> Order:
    """An order of ``customer_id`` made of ``lines`` (sku, category, unit price), created at
    ``when``; its total is the lines' sum."""
    lines = lines or [("PH-1", "electronics", "100.00")]
    return make_order(
        order_no,
        customer={"id": customer_id, "name": name, "vip": False},
        lines=[
            {"sku": sku, "name": sku, "category": category, "quantity": 1, "unit_price": price}
            for sku, category, price in lines
        ],
        pricing={"currency": "CNY", "total": str(sum(Decimal(p) for _, _, p in lines))},
        created_at=when.isoformat(),
    )

"""A realistic, reproducible stream of orders and status changes (same seed, same stream).

A customer population with long-tailed spend (a few VIPs and big spenders, many small ones),
a realistic mix of shipping methods, regions, categories, urgent notes, cancellations,
returns, status changes that follow each order over time, and the odd fraud-like burst.
"""

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

# (province, weight): larger, richer provinces order more
PROVINCES = [
    ("广东", 14),
    ("江苏", 10),
    ("浙江", 10),
    ("上海", 8),
    ("北京", 8),
    ("山东", 7),
    ("四川", 5),
    ("湖北", 5),
    ("河南", 5),
    ("福建", 4),
    ("湖南", 4),
    ("天津", 3),
    ("河北", 3),
    ("重庆", 3),
    ("安徽", 3),
    ("陕西", 2),
    ("辽宁", 2),
    ("云南", 1),
    ("广西", 1),
    ("黑龙江", 1),
    ("新疆", 1),
    ("香港", 1),
]
METHODS = [("standard", 62), ("express", 24), ("same_day", 7), ("pickup", 7)]
PAYMENTS = [
    ("alipay", 40),
    ("wechat_pay", 35),
    ("card", 15),
    ("bank_transfer", 7),
    ("cash_on_delivery", 3),
]
CATALOG = {
    "electronics": [
        ("PHONE", "智能手机", 2999, 8999),
        ("LAPTOP", "Laptop", 4999, 15999),
        ("EARBUDS", "无线耳机", 199, 1299),
    ],
    "home": [("KETTLE", "电热水壶", 89, 399), ("SOFA", "Sofa", 2999, 12999)],
    "apparel": [("JACKET", "羽绒服", 399, 2499), ("SHOES", "Running shoes", 299, 1299)],
    "beauty": [("SERUM", "精华液", 199, 1599)],
    "food": [("TEA", "龙井茶", 88, 888), ("RICE", "五常大米", 59, 199)],
    "books": [("NOVEL", "Novel", 29, 99)],
    "industrial": [("SERVER", "Server rack", 38000, 188000)],
}
URGENT_NOTES = [
    "加急",
    "请尽快发货，加急",
    "URGENT: needed for an event",
    "紧急订单",
    "asap please",
]
CHANNELS = [("web", 45), ("app", 35), ("mini_program", 15), ("phone", 5)]


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    phone: str
    email: str
    company: str | None
    vip: bool
    weight: float  # how often they order, long-tailed
    big_spender: bool


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    action: dict[str, Any] = field(compare=False)


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


class OrderStream:
    """Iterate to get actions: ``{"type": "order", "order": {...}}`` or
    ``{"type": "status", "order_no": ..., "customer_id": ..., "status": ...}``, in time order."""

    def __init__(
        self,
        seed: int,
        customers: int,
        start: datetime,
        mean_gap_s: float = 1.0,
        prefix: str = "SIM",
    ) -> None:
        self._rng = random.Random(seed)  # noqa: S311  (a reproducible simulation, not secrets)
        self._fake_zh = Faker("zh_CN")
        self._fake_en = Faker("en_US")
        self._fake_zh.seed_instance(seed)
        self._fake_en.seed_instance(seed + 1)
        self._now = start
        self._start = start
        self._gap = mean_gap_s
        self._prefix = prefix
        self._count = 0
        self._due: list[_Due] = []
        self._seq = 0
        self.customers = [self._customer(i) for i in range(customers)]
        self._weights = [c.weight for c in self.customers]

    def _customer(self, index: int) -> Customer:
        chinese = self._rng.random() < 0.8
        fake = self._fake_zh if chinese else self._fake_en
        raw_weight = self._rng.paretovariate(1.2)  # long tail: a few customers spend big
        return Customer(
            id=f"{self._prefix}-C{index:06d}",
            name=fake.name(),
            phone=fake.phone_number(),
            email=fake.email(),
            company=fake.company() if self._rng.random() < 0.3 else None,
            vip=self._rng.random() < 0.01,
            weight=min(raw_weight, 5.0),  # ordering frequency, capped
            big_spender=raw_weight > 30,
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        self._now += timedelta(seconds=self._rng.expovariate(1 / self._gap))
        if self._due and self._due[0].at <= self._now:
            return heapq.heappop(self._due).action
        if self._rng.random() < 0.004:  # a fraud-like burst: many orders, one customer, minutes
            customer = self._rng.choice(self.customers)
            for minute in range(1, 6):
                self._schedule(
                    self._now + timedelta(minutes=minute / 2),
                    {"type": "order", "order": self._order(customer, burst=True)},
                )
        customer = self._rng.choices(self.customers, self._weights)[0]
        order = self._order(customer)
        self._follow(order)
        return {"type": "order", "order": order}

    def _order(self, customer: Customer, burst: bool = False) -> dict[str, Any]:
        self._count += 1
        rng = self._rng
        categories = (
            ["industrial"]
            if customer.big_spender and rng.random() < 0.2
            else list(set(rng.choices(list(CATALOG), k=rng.choice([1, 1, 1, 2, 3]))))
        )
        lines: list[dict[str, Any]] = []
        subtotal = Decimal(0)
        for category in categories:
            sku, name, low, high = rng.choice(CATALOG[category])
            price = Decimal(rng.randint(low, high))
            quantity = rng.choice([1, 1, 1, 2, 3])
            subtotal += price * quantity
            lines.append(
                {
                    "sku": f"{sku}-{int(price)}",
                    "name": name,
                    "category": category,
                    "quantity": quantity,
                    "unit_price": f"{price}.00",
                }
            )
        shipping_fee = Decimal(0) if subtotal > 99 else Decimal(10)
        province = _pick(rng, PROVINCES)
        fake = self._fake_zh
        requested = self._now + timedelta(hours=rng.uniform(4, 20)) if rng.random() < 0.08 else None
        order: dict[str, Any] = {
            # the stream's start in the number: a second run never reuses an earlier run's numbers
            "order_no": f"{self._prefix}-{self._start:%Y%m%d-%H%M%S}-{self._count:06d}",
            "customer": {
                "id": customer.id,
                "name": customer.name,
                "phone": _phone(customer.phone),
                "email": customer.email,
                "company": customer.company,
                "vip": customer.vip,
            },
            "lines": lines,
            "pricing": {
                "currency": "CNY",
                "total": f"{subtotal + shipping_fee:.2f}",
                "shipping_fee": f"{shipping_fee:.2f}",
            },
            "payment": {"method": _pick(rng, PAYMENTS), "paid_at": self._now.isoformat()},
            "status": "pending",
            "shipping": {
                "method": "express" if burst else _pick(rng, METHODS),
                "province": province,
                "city": fake.city_name(),
                "address": fake.street_address(),
            },
            "channel": _pick(rng, CHANNELS),
            "notes": rng.choice(URGENT_NOTES) if rng.random() < 0.05 else "",
            "created_at": self._now.isoformat(),
        }
        if requested:
            order["requested_delivery_at"] = requested.isoformat()
        return order

    def _follow(self, order: dict[str, Any]) -> None:
        """Status changes later in the stream: most orders ship and complete; some are
        cancelled before shipping, a few come back."""
        base = self._now
        rng = self._rng
        keys = {"order_no": order["order_no"], "customer_id": order["customer"]["id"]}
        if rng.random() < 0.05:
            self._schedule(
                base + timedelta(minutes=rng.uniform(1, 30)),
                {"type": "status", **keys, "status": "cancelled"},
            )
            return
        steps = [("processed", 0.5), ("shipped", 3), ("completed", 10)]
        at = base
        for status, minutes in steps:
            at += timedelta(minutes=rng.uniform(minutes / 2, minutes * 2))
            self._schedule(at, {"type": "status", **keys, "status": status})
        if rng.random() < 0.03:
            self._schedule(
                at + timedelta(hours=rng.uniform(1, 48)),
                {"type": "status", **keys, "status": "returned"},
            )

    def _schedule(self, at: datetime, action: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._due, _Due(at, self._seq, action))


def _phone(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())[-11:]
    return f"+86 {digits}"

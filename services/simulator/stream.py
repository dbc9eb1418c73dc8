"""A realistic, reproducible stream of orders and their later changes (same seed, same stream).

What a Chinese online shop sees (the shapes and their sources: docs/simulator.md):
- basket values log-normal around a median in the low hundreds of CNY, with a long tail of a
  few B2B bulk orders and luxury goods;
- a customer base with a long-tailed order frequency, where most orders in a steady state come
  from returning customers: the first order of each customer is new, and the new-customer share
  falls as the run goes on (or starts low, from a pre-generated history of past orders);
- standard shipping for most orders, express and same-day for a few, a small share of urgent
  notes and tight delivery dates;
- each order followed later by its status changes (pending -> processed -> shipped ->
  completed), a few cancelled before they ship, a few returned after completion, optionally a
  few changed by the shop before they ship (address, notes, shipping upgraded);
- now and then a fraud-like burst: one account, several express orders of phones in minutes.
"""

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

from services.simulator.catalog import CATALOG, INDUSTRIAL, PHONE, unit_price

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
# Each province's larger cities, largest first: an address's city lies in its province (the
# municipalities and Hong Kong are their own city).
CITIES: dict[str, tuple[str, ...]] = {
    "广东": ("广州", "深圳", "东莞", "佛山", "惠州", "珠海", "中山", "汕头"),
    "江苏": ("苏州", "南京", "无锡", "常州", "南通", "徐州", "扬州"),
    "浙江": ("杭州", "宁波", "温州", "绍兴", "嘉兴", "金华", "台州"),
    "上海": ("上海",),
    "北京": ("北京",),
    "山东": ("青岛", "济南", "烟台", "潍坊", "临沂", "淄博"),
    "四川": ("成都", "绵阳", "宜宾", "德阳", "南充"),
    "湖北": ("武汉", "宜昌", "襄阳", "荆州", "黄石"),
    "河南": ("郑州", "洛阳", "南阳", "新乡", "开封"),
    "福建": ("福州", "厦门", "泉州", "漳州"),
    "湖南": ("长沙", "株洲", "岳阳", "衡阳", "湘潭"),
    "天津": ("天津",),
    "河北": ("石家庄", "唐山", "保定", "廊坊", "邯郸"),
    "重庆": ("重庆",),
    "安徽": ("合肥", "芜湖", "阜阳", "安庆"),
    "陕西": ("西安", "咸阳", "宝鸡"),
    "辽宁": ("沈阳", "大连", "鞍山"),
    "云南": ("昆明", "曲靖", "大理"),
    "广西": ("南宁", "柳州", "桂林"),
    "黑龙江": ("哈尔滨", "大庆", "齐齐哈尔"),
    "新疆": ("乌鲁木齐", "昌吉", "喀什"),
    "香港": ("香港",),
}
# A province's orders by city: the larger the city, the more (1, 1/2, 1/3, ... by rank).
CITY_WEIGHTS = {p: [1 / rank for rank in range(1, len(c) + 1)] for p, c in CITIES.items()}
# Shares of orders (docs/simulator.md): most parcels go by the standard courier; next-day
# express and same-day delivery are paid options a minority picks.
METHODS = [("standard", 80), ("express", 12), ("same_day", 2), ("pickup", 6)]
# e-wallets about two thirds of payments, cards a fifth, bank transfer and cash on delivery the
# rest (docs/simulator.md)
PAYMENTS = [
    ("alipay", 37),
    ("wechat_pay", 30),
    ("card", 19),
    ("bank_transfer", 8),
    ("cash_on_delivery", 6),
]
CHANNELS = [("app", 45), ("mini_program", 25), ("web", 25), ("phone", 5)]


URGENT_NOTES = [
    "加急",
    "请尽快发货，加急",
    "URGENT: needed for an event",
    "紧急订单",
    "asap please",
]
PLAIN_NOTES = [
    "",
    "",
    "",
    "",
    "请放快递柜",
    "周末送货",
    "please call before delivery",
    "送人的，不要放发票",
]

# The shape of the stream: each a share of orders (or of customers), see docs/simulator.md.
LINES_PER_ORDER = [(1, 58), (2, 24), (3, 10), (4, 5), (5, 3)]
UNITS_PER_LINE = [(1, 80), (2, 13), (3, 4), (4, 2), (6, 1)]
B2B_CUSTOMERS = 0.02  # companies buying in bulk
B2B_INDUSTRIAL = 0.05  # of a B2B customer's orders: industrial equipment
VIP_CUSTOMERS = 0.01  # flagged VIP by the CRM: among its frequent buyers (the top 5 %)
FREQUENT_BUYERS = 0.05
CHINESE_CUSTOMERS = 0.95  # Chinese names (and companies); the rest English
ELSEWHERE_SHARE = 0.1  # of a customer's orders: shipped away from home (a gift, the office)
# the least time between two orders of one customer on the stream's clock (bursts aside): the
# demo streams 5 orders a second from 5,000 customers, and without it its heaviest buyers
# ordered every minute or two, so the velocity rule (5 orders in 10 minutes) took them for
# fraud; 5 minutes apart, no one but a burst places 5 within 10
MIN_REORDER_GAP = timedelta(minutes=5)
ACQUISITION = 0.12  # of orders: a customer's first visit, drawn at random from those not seen
URGENT_NOTES_SHARE = 0.015
SOON_DELIVERY_SHARE = 0.02  # delivery requested within a day
LATER_DELIVERY_SHARE = 0.03  # delivery date requested days ahead
COUPON_SHARE = 0.25
FREE_SHIPPING_FROM = Decimal(99)  # 满99包邮
CANCEL_SHARE = 0.04  # cancelled before shipping
RETURN_SHARE = 0.03  # returned after completion
BURST_SHARE = 0.0008  # of orders: a fraud-like burst starts
# The past orders span two years of a shop that doubled last year: a third of them in the year
# before last, two thirds in the last one. A customer's lifetime spend then differs from their
# spend of the last 365 days (``high-value`` counts the year, ``vip-by-spend`` the lifetime),
# and some customers' last order is older than a year (lapsed).
HISTORY_DAYS = 730
HISTORY_LAST_YEAR_SHARE = 2 / 3
HISTORY_FINAL = [("completed", 95.5), ("cancelled", 3), ("returned", 1.5)]

# Minutes after the order (on the stream's clock, times ``follow_up_scale``): a compressed shop
# day, so a demo of a few minutes sees orders move (a real shop ships in 1-2 days).
PROCESSED_AFTER = (0.3, 2.0)
SHIPPED_AFTER = (1.0, 6.0)
COMPLETED_AFTER = (3.0, 15.0)
RETURNED_AFTER = (5.0, 30.0)
CANCELLED_AFTER = (0.2, 3.0)


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    phone: str
    email: str
    company: str | None
    vip: bool
    b2b: bool
    province: str  # home: where most of their orders go
    city: str
    street: str


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    action: dict[str, Any] = field(compare=False)


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


class Directory:
    """Names, companies and street addresses drawn once from Faker (zh_CN and en_US), then
    picked by the stream's own generator: Faker costs about a millisecond an order. Cities come
    from ``CITIES``, not Faker, whose city is drawn apart from its province."""

    def __init__(self, seed: int, size: int = 600) -> None:
        zh, en = Faker("zh_CN"), Faker("en_US")
        zh.seed_instance(seed)
        en.seed_instance(seed + 1)
        self.names_zh = [zh.name() for _ in range(size)]
        self.names_en = [en.name() for _ in range(size // 4)]
        self.companies_zh = [zh.company() for _ in range(size // 4)]
        self.companies_en = [en.company() for _ in range(size // 8)]
        self.mail_users = [zh.user_name() for _ in range(size // 2)]  # pinyin, as in China
        self.mail_domains = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"]
        # a street and a number, as a Chinese address writes them (Faker's "{street}{letter}座"
        # put a stray Latin letter in every address)
        self.streets = [f"{zh.street_name()}{zh.random_int(1, 999)}号" for _ in range(size)]


class CustomerBase:
    """``size`` potential customers with long-tailed order frequencies (log-normal weights: a
    few order every week, most a few times a year). A customer's details are made at their
    first order, from the stream's own random generator, so the stream stays reproducible."""

    def __init__(self, rng: random.Random, size: int, prefix: str, directory: Directory) -> None:
        self._rng = rng
        self._prefix = prefix
        self._directory = directory
        weights = [rng.lognormvariate(0, 1.1) for _ in range(size)]
        self._cumulative = list(itertools.accumulate(weights))
        self._weights = weights
        ranked = sorted(weights, reverse=True)
        self._frequent_from = ranked[max(0, int(size * FREQUENT_BUYERS) - 1)] if weights else 0.0
        self._last_at: dict[int, datetime] = {}
        self._known: dict[int, Customer] = {}
        self._unseen = list(range(size))  # swap-remove, with positions for O(1) removal
        self._position = list(range(size))

    @property
    def known(self) -> int:
        return len(self._known)

    def next_customer(self, at: datetime) -> tuple[Customer, bool]:
        """Who places the next order at ``at``, and whether it is their first: a customer who
        ordered less than ``MIN_REORDER_GAP`` before is drawn again (the heaviest buyers may
        take a few draws; a run with too few customers for its rate gives up after 50)."""
        rng = self._rng
        for _ in range(50):
            if self._unseen and rng.random() < ACQUISITION:
                index = self._unseen[rng.randrange(len(self._unseen))]
            else:
                point = rng.random() * self._cumulative[-1]
                index = min(bisect.bisect_right(self._cumulative, point), len(self._cumulative) - 1)
            last = self._last_at.get(index)
            if last is None or abs(at - last) >= MIN_REORDER_GAP:
                break
        self._last_at[index] = at
        return self._customer(index)

    def _customer(self, index: int) -> tuple[Customer, bool]:
        known = self._known.get(index)
        if known is not None:
            return known, False
        self._forget_unseen(index)
        rng = self._rng
        directory = self._directory
        chinese = rng.random() < CHINESE_CUSTOMERS
        names = directory.names_zh if chinese else directory.names_en
        companies = directory.companies_zh if chinese else directory.companies_en
        b2b = rng.random() < B2B_CUSTOMERS
        mail_user = rng.choice(directory.mail_users)
        frequent = self._weights[index] >= self._frequent_from
        province = _pick(rng, PROVINCES)
        customer = Customer(
            id=f"{self._prefix}-C{index:06d}",
            name=rng.choice(names),
            phone=f"+86 1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
            email=f"{mail_user}{index}@{rng.choice(directory.mail_domains)}",
            company=rng.choice(companies) if b2b or rng.random() < 0.05 else None,
            vip=frequent and rng.random() < VIP_CUSTOMERS / FREQUENT_BUYERS,
            b2b=b2b,
            province=province,
            city=rng.choices(CITIES[province], CITY_WEIGHTS[province])[0],
            street=rng.choice(directory.streets),
        )
        self._known[index] = customer
        return customer, True

    def _forget_unseen(self, index: int) -> None:
        position = self._position[index]
        last = self._unseen[-1]
        self._unseen[position] = last
        self._position[last] = position
        self._unseen.pop()


class OrderStream:
    """Iterate to get actions, in time order:
    ``{"type": "order", "order": {...}}`` (a new order),
    ``{"type": "status", "order_no": ..., "customer_id": ..., "status": ...}`` (a status change),
    ``{"type": "update", "order": {...}}`` (a changed order, only when ``updates`` > 0).

    ``history`` orders placed over the past two years come first (``history_orders()``), so a
    run can start with a customer base in its steady state; iteration then yields the live
    stream.
    """

    def __init__(
        self,
        seed: int,
        customers: int,
        start: datetime,
        mean_gap_s: float = 1.0,
        prefix: str = "SIM",
        *,
        history: int = 0,
        follow_up_scale: float = 1.0,
        updates: float = 0.0,
    ) -> None:
        self._rng = random.Random(seed)  # noqa: S311  (a reproducible simulation, not secrets)
        self._directory = Directory(seed)
        self._now = start
        self._start = start
        self._next_order_at = start
        self._gap = mean_gap_s
        self._prefix = prefix
        self._scale = follow_up_scale
        self._updates = updates
        self._count = 0
        self._due: list[_Due] = []
        self._seq = 0
        self.base = CustomerBase(self._rng, customers, prefix, self._directory)
        self._history = [self._past_order(i, history) for i in range(history)]

    def history_orders(self) -> list[dict[str, Any]]:
        """Orders of the past two years, oldest first, each in its final status: send them before
        the live stream (as an import from the CRM would)."""
        return self._history

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        # New orders arrive as a Poisson process; changes due before the next one come first.
        if self._due and self._due[0].at <= self._next_order_at:
            due = heapq.heappop(self._due)
            self._now = max(self._now, due.at)
            return due.action
        self._now = self._next_order_at
        self._next_order_at += timedelta(seconds=self._rng.expovariate(1 / self._gap))
        if self._rng.random() < BURST_SHARE:
            self._burst()
        customer, _ = self.base.next_customer(self._now)
        order = self._order(customer, self._now)
        self._follow(order, self._now)
        return {"type": "order", "order": order}

    def _past_order(self, index: int, count: int) -> dict[str, Any]:
        at = self._start - timedelta(
            days=HISTORY_DAYS * (1 - _history_time(index, count, self._rng))
        )
        customer, _ = self.base.next_customer(at)
        order = self._order(customer, at)
        order["status"] = _pick(self._rng, HISTORY_FINAL)
        return order

    def _burst(self) -> None:
        """A fraud-like burst: one account (new, or taken over) orders phones by express
        several times within minutes."""
        customer, _ = self.base.next_customer(self._now)
        for step in range(self._rng.randint(5, 8)):
            at = self._now + timedelta(minutes=0.5 * (step + 1) * self._scale)
            order = self._order(customer, at, burst=True)
            self._schedule(at, {"type": "order", "order": order})
            if self._rng.random() < 0.5:  # the shop's checks catch it
                keys = {"order_no": order["order_no"], "customer_id": customer.id}
                cancel_at = at + self._minutes(CANCELLED_AFTER)
                self._schedule(cancel_at, {"type": "status", **keys, "status": "cancelled"})

    def _order(self, customer: Customer, at: datetime, burst: bool = False) -> dict[str, Any]:
        self._count += 1
        rng = self._rng
        lines = self._lines(customer, at, burst)
        subtotal = sum(Decimal(line["unit_price"]) * line["quantity"] for line in lines)
        discount = (
            min(Decimal(_pick(rng, [(5, 4), (10, 4), (20, 2), (50, 1)])), subtotal / 2)
            if rng.random() < COUPON_SHARE
            else Decimal(0)
        )
        discount = discount.quantize(Decimal("0.01"))
        shipping_fee = Decimal(0) if subtotal >= FREE_SHIPPING_FROM else Decimal(10)
        method = "express" if burst else _pick(rng, METHODS)
        # home, mostly; a fraud-like burst ships wherever
        home = not burst and rng.random() >= ELSEWHERE_SHARE
        province = customer.province if home else _pick(rng, PROVINCES)
        city = customer.city if home else rng.choices(CITIES[province], CITY_WEIGHTS[province])[0]
        order: dict[str, Any] = {
            # the stream's start in the number: a second run never reuses an earlier run's numbers
            "order_no": f"{self._prefix}-{self._start:%Y%m%d-%H%M%S}-{self._count:06d}",
            "customer": {
                "id": customer.id,
                "name": customer.name,
                "phone": customer.phone,
                "email": customer.email,
                "company": customer.company,
                "vip": customer.vip,
            },
            "lines": lines,
            "pricing": {
                "currency": "CNY",
                "total": f"{subtotal - discount + shipping_fee:.2f}",
                "discount": f"{discount:.2f}",
                "shipping_fee": f"{shipping_fee:.2f}",
            },
            "payment": {
                "method": "card" if burst else _pick(rng, PAYMENTS),
                "paid_at": at.isoformat(),
            },
            "status": "pending",
            "shipping": {
                "method": method,
                "province": province,
                "city": city,
                "address": customer.street if home else rng.choice(self._directory.streets),
            },
            "channel": _pick(rng, CHANNELS),
            "notes": (
                rng.choice(URGENT_NOTES)
                if rng.random() < URGENT_NOTES_SHARE
                else rng.choice(PLAIN_NOTES)
            ),
            "created_at": at.isoformat(),
        }
        requested = rng.random()
        if requested < SOON_DELIVERY_SHARE:
            order["requested_delivery_at"] = (at + timedelta(hours=rng.uniform(4, 20))).isoformat()
        elif requested < SOON_DELIVERY_SHARE + LATER_DELIVERY_SHARE:
            order["requested_delivery_at"] = (at + timedelta(days=rng.uniform(2, 10))).isoformat()
        return order

    def _lines(self, customer: Customer, at: datetime, burst: bool) -> list[dict[str, Any]]:
        rng = self._rng
        if burst:
            products = [PHONE]
        elif customer.b2b and rng.random() < B2B_INDUSTRIAL:
            products = [INDUSTRIAL]
        else:
            count = _pick(rng, LINES_PER_ORDER)
            products = rng.choices(CATALOG, [p.popularity for p in CATALOG], k=count)
        lines: dict[str, dict[str, Any]] = {}
        before_start = self._start - at
        for product in products:
            variant = product.variant_for(customer.id, before_start, rng)
            price = unit_price(variant, rng)
            if product is INDUSTRIAL:
                quantity = rng.randint(1, 3)
            elif customer.b2b and not burst:
                quantity = min(max(5, round(rng.lognormvariate(math.log(12), 0.7))), 1000)
            else:
                quantity = _pick(rng, UNITS_PER_LINE)
            sku = variant.sku
            if sku in lines:
                lines[sku]["quantity"] = min(lines[sku]["quantity"] + quantity, 100_000)
                continue
            lines[sku] = {
                "sku": sku,
                "name": product.name,
                "category": product.category,
                "quantity": min(quantity, 100_000),
                "unit_price": f"{price}.00",
            }
        return list(lines.values())

    def _follow(self, order: dict[str, Any], created: datetime) -> None:
        """The order's later changes, in a shop's order: processed, shipped, completed; a few
        cancelled before they ship, a few returned after completion, a few changed before
        they ship."""
        rng = self._rng
        keys = {"order_no": order["order_no"], "customer_id": order["customer"]["id"]}
        at = created + self._minutes(PROCESSED_AFTER)
        if self._updates and rng.random() < self._updates:
            self._schedule_update(order, created, at)
        if rng.random() < CANCEL_SHARE:
            # cancelled while pending (the buyer changed their mind) or once processed
            if rng.random() < 0.5:
                self._schedule(at, {"type": "status", **keys, "status": "processed"})
            cancel_at = at + self._minutes(CANCELLED_AFTER)
            self._schedule(cancel_at, {"type": "status", **keys, "status": "cancelled"})
            return
        self._schedule(at, {"type": "status", **keys, "status": "processed"})
        at += self._minutes(SHIPPED_AFTER)
        self._schedule(at, {"type": "status", **keys, "status": "shipped"})
        at += self._minutes(COMPLETED_AFTER)
        self._schedule(at, {"type": "status", **keys, "status": "completed"})
        if rng.random() < RETURN_SHARE:
            at += self._minutes(RETURNED_AFTER)
            self._schedule(at, {"type": "status", **keys, "status": "returned"})

    def _schedule_update(
        self, order: dict[str, Any], created: datetime, processed: datetime
    ) -> None:
        """The shop changes the order before it is processed: the buyer asked for a new
        address, for speed (express, or a note), or the service desk adds a note."""
        rng = self._rng
        at = created + (processed - created) * rng.uniform(0.2, 0.8)
        changed = {**order, "shipping": dict(order["shipping"]), "updated_at": at.isoformat()}
        match _pick(rng, [("address", 5), ("express", 3), ("urgent_note", 1), ("note", 1)]):
            case "address":
                changed["shipping"]["address"] = rng.choice(self._directory.streets)
            case "express":
                changed["shipping"]["method"] = "express"
            case "urgent_note":
                changed["notes"] = rng.choice(URGENT_NOTES)
            case _:
                changed["notes"] = "客户来电：请工作日送货"
        self._schedule(at, {"type": "update", "order": changed})

    def _minutes(self, bounds: tuple[float, float]) -> timedelta:
        return timedelta(minutes=self._rng.uniform(*bounds) * self._scale)

    def _schedule(self, at: datetime, action: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._due, _Due(at, self._seq, action))


def _history_time(index: int, count: int, rng: random.Random) -> float:
    """Where the ``index``-th of ``count`` past orders falls in the history (0: its start, two
    years ago; 1: now), oldest first with some jitter: evenly within each year, the last year
    holding ``HISTORY_LAST_YEAR_SHARE`` of them."""
    share = (index + rng.random()) / max(count, 1)
    before = 1 - HISTORY_LAST_YEAR_SHARE
    if share < before:
        return share / before * 0.5
    return 0.5 + (share - before) / HISTORY_LAST_YEAR_SHARE * 0.5

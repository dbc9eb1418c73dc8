"""The order stream simulator: valid, reproducible, and shaped like a shop's orders (statistical
checks on fixed seeds; the bounds are those docs/simulator.md states)."""

import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from services.simulator.stream import CATALOG, CITIES, INDUSTRIAL, PROVINCES, OrderStream
from shared.models import Order

START = datetime(2026, 11, 24, tzinfo=UTC)
DEMO = Path(__file__).parents[2] / "deploy" / "local" / "demo.sh"
Action = dict[str, Any]


def actions(seed: int, count: int, **options: Any) -> list[Action]:
    stream = OrderStream(seed, 2000, START, mean_gap_s=0.05, **options)
    return list(itertools.islice(stream, count))


@cache
def long_run(seed: int) -> tuple[Action, ...]:
    """About 10,000 orders with their changes (follow-ups compressed to fit in the run)."""
    return tuple(actions(seed, 36_000, follow_up_scale=0.05, updates=0.02))


def orders_of(stream: tuple[Action, ...] | list[Action]) -> list[dict[str, Any]]:
    return [a["order"] for a in stream if a["type"] == "order"]


def median(values: list[Decimal]) -> Decimal:
    return sorted(values)[len(values) // 2]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    assert actions(7, 300, history=50) == actions(7, 300, history=50)
    assert actions(7, 300) != actions(8, 300)
    first = OrderStream(7, 500, START, history=200).history_orders()
    assert first == OrderStream(7, 500, START, history=200).history_orders()


def test_every_simulated_order_and_update_is_valid() -> None:
    stream = actions(3, 3000, follow_up_scale=0.05, updates=0.05)
    history = OrderStream(3, 500, START, history=300).history_orders()
    changed = [a["order"] for a in stream if a["type"] == "update"]

    assert len(orders_of(stream)) > 500
    assert changed
    for order in [*orders_of(stream), *changed, *history]:
        Order.model_validate(order)


def test_order_values_have_a_median_in_the_low_hundreds_and_a_long_tail() -> None:
    totals = [Decimal(o["pricing"]["total"]) for o in orders_of(long_run(11))]
    share_at_least = {
        floor: sum(total >= floor for total in totals) / len(totals)
        for floor in (1000, 5000, 20000, 50000)
    }

    assert Decimal(150) <= median(totals) <= Decimal(350)
    assert 0.08 <= share_at_least[1000] <= 0.25  # a tenth or so above a thousand
    assert 0.01 <= share_at_least[5000] <= 0.05
    assert 0.001 <= share_at_least[20000] <= 0.01  # B2B and luxury: a few in a thousand
    assert share_at_least[50000] <= 0.004
    assert max(totals) >= 30 * median(totals)


def test_the_new_customer_share_falls_as_the_run_goes_on() -> None:
    seen: set[str] = set()
    first_orders = []
    for order in orders_of(long_run(11)):
        first_orders.append(order["customer"]["id"] not in seen)
        seen.add(order["customer"]["id"])
    tenth = len(first_orders) // 10
    share_first, share_last = (
        sum(part) / tenth for part in (first_orders[:tenth], first_orders[-tenth:])
    )

    assert share_first > 0.6
    assert share_last < 0.5  # most orders now come from returning customers
    assert share_last < share_first - 0.3


def test_a_history_starts_the_stream_in_a_steady_state() -> None:
    stream = OrderStream(5, 2000, START, mean_gap_s=0.05, history=6000)
    history = stream.history_orders()
    live = [a["order"] for a in itertools.islice(stream, 3000) if a["type"] == "order"]
    known = {o["customer"]["id"] for o in history}
    new_share = sum(o["customer"]["id"] not in known for o in live) / len(live)
    final = Counter(o["status"] for o in history)

    assert len(history) == 6000
    assert all(o["created_at"] < live[0]["created_at"] for o in history)
    assert [o["created_at"] for o in history] == sorted(o["created_at"] for o in history)
    assert new_share < 0.3
    assert final["completed"] > 0.9 * len(history)
    assert 0.01 < (final["cancelled"] + final["returned"]) / len(history) < 0.1


def test_the_demo_history_spans_two_years_so_a_years_spend_is_not_the_lifetimes() -> None:
    """``high-value`` counts the last 365 days and ``vip-by-spend`` the lifetime: a history of
    one year made them the same figure for every demo customer."""
    stream = OrderStream(42, demo_option("customers"), START, history=demo_option("history"))
    history = stream.history_orders()
    year_ago = START - timedelta(days=365)
    last_year = [o for o in history if datetime.fromisoformat(o["created_at"]) >= year_ago]
    spend: dict[str, list[Decimal]] = {}  # customer -> [lifetime, last 365 days]
    for order in history:
        figures = spend.setdefault(order["customer"]["id"], [Decimal(0), Decimal(0)])
        figures[0] += Decimal(order["pricing"]["total"])
        if datetime.fromisoformat(order["created_at"]) >= year_ago:
            figures[1] += Decimal(order["pricing"]["total"])
    differ = sum(lifetime > year for lifetime, year in spend.values()) / len(spend)
    lapsed = sum(year == 0 for _, year in spend.values()) / len(spend)

    oldest = datetime.fromisoformat(history[0]["created_at"])
    assert START - oldest > timedelta(days=700)
    assert 0.6 < len(last_year) / len(history) < 0.72  # a shop that doubled last year
    assert len(last_year) >= 10_000  # the last year as busy as the demo's before
    assert differ > 0.3
    assert 0.05 < lapsed < 0.5  # some customers ordered only in the year before last


def test_shipping_urgency_and_payment_shares_are_realistic() -> None:
    orders = orders_of(long_run(11))
    methods = Counter(o["shipping"]["method"] for o in orders)
    urgent_notes = sum(
        any(word in o["notes"].lower() for word in ("加急", "紧急", "urgent", "asap"))
        for o in orders
    )
    payments = Counter(o["payment"]["method"] for o in orders)

    assert 0.70 < methods["standard"] / len(orders) < 0.88
    assert 0.08 < methods["express"] / len(orders) < 0.18
    assert 0.005 < methods["same_day"] / len(orders) < 0.04
    assert 0.005 < urgent_notes / len(orders) < 0.03
    assert 0.6 < (payments["alipay"] + payments["wechat_pay"]) / len(orders) < 0.75


def test_status_changes_follow_each_order_in_a_shops_order() -> None:
    stream = long_run(11)
    orders = orders_of(stream)
    path: dict[str, list[str]] = {o["order_no"]: ["pending"] for o in orders}
    for action in stream:
        if action["type"] == "status":
            path[action["order_no"]].append(action["status"])
    allowed = {
        ("pending", "processed"),
        ("processed", "shipped"),
        ("shipped", "completed"),
        ("completed", "returned"),
        ("pending", "cancelled"),
        ("processed", "cancelled"),
    }
    steps = Counter(step for p in path.values() for step in itertools.pairwise(p))
    statuses = Counter(s for p in path.values() for s in p[1:])

    assert set(steps) <= allowed  # never shipped after cancelled, never returned before done
    assert 0.02 < statuses["cancelled"] / len(orders) < 0.06
    completed = statuses["completed"]
    assert completed > 0.5 * len(orders)
    assert 0.015 < statuses["returned"] / completed < 0.05


def test_updates_come_before_the_order_is_processed() -> None:
    stream = long_run(11)
    state: dict[str, str] = {}
    updates = 0
    for action in stream:
        if action["type"] == "order":
            state[action["order"]["order_no"]] = "pending"
        elif action["type"] == "status":
            state[action["order_no"]] = action["status"]
        else:
            updates += 1
            assert state[action["order"]["order_no"]] == "pending"
            assert action["order"]["updated_at"] >= action["order"]["created_at"]

    assert 0.01 < updates / len(orders_of(stream)) < 0.03


def test_rare_fraud_bursts_put_many_express_orders_on_one_account() -> None:
    orders = orders_of(long_run(11))
    per_customer_express_phones = Counter(
        o["customer"]["id"]
        for o in orders
        if o["shipping"]["method"] == "express" and o["lines"][0]["sku"].startswith("PHONE-")
    )
    bursts = [c for c, n in per_customer_express_phones.items() if n >= 5]

    assert 1 <= len(bursts) <= 30


def test_names_are_mostly_chinese_with_some_english() -> None:
    names = [o["customer"]["name"] for o in orders_of(long_run(11))]
    chinese = sum(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names)

    assert 0.9 < chinese / len(names) < 0.99


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_city_lies_in_the_orders_province() -> None:
    orders = orders_of(long_run(11))
    cities_seen = Counter((o["shipping"]["province"], o["shipping"]["city"]) for o in orders)
    province_of = {city: p for p, cities in CITIES.items() for city in cities}

    assert {p for p, _ in PROVINCES} == set(CITIES)  # every province has its cities
    assert len(province_of) == sum(len(c) for c in CITIES.values())  # no city in two provinces
    assert all(province_of[city] == province for province, city in cities_seen)
    assert cities_seen[("北京", "北京")] > 0
    assert cities_seen[("浙江", "杭州")] > cities_seen[("浙江", "台州")] > 0


def test_chinese_customers_have_chinese_companies_and_products_are_named_in_chinese() -> None:
    orders = orders_of(long_run(11))
    with_company = [o["customer"] for o in orders if o["customer"]["company"]]
    chinese = [c for c in with_company if is_chinese(c["name"])]
    english = [c for c in with_company if not is_chinese(c["name"])]

    assert chinese
    assert english
    assert all(is_chinese(c["company"]) for c in chinese)
    assert not any(is_chinese(c["company"]) for c in english)
    assert all(is_chinese(p.name) for p in [*CATALOG, INDUSTRIAL])
    assert all(is_chinese(line["name"]) for o in orders for line in o["lines"])


def demo_option(name: str) -> int:
    """The default the demo script passes for ``--name`` (``${ORDERTAG_DEMO_...:-N}``)."""
    found = re.search(rf'--{name} "\$\{{ORDERTAG_DEMO_\w+:-(\d+)\}}"', DEMO.read_text())
    assert found, f"deploy/local/demo.sh passes no --{name}"
    return int(found.group(1))


def first_orders(orders: list[dict[str, Any]], known: set[str]) -> list[bool]:
    """Whether each order is its customer's first (``known``: customers seen before)."""
    first = []
    for order in orders:
        first.append(order["customer"]["id"] not in known)
        known.add(order["customer"]["id"])
    return first


def test_the_demo_streams_mostly_orders_of_returning_customers() -> None:
    """deploy/local/demo.sh says so, and the console's tag share (over every order, the
    history's too) shows it."""
    stream = OrderStream(
        42, demo_option("customers"), START, history=demo_option("history"), mean_gap_s=0.2
    )
    known: set[str] = set()
    past = first_orders(stream.history_orders(), known)
    live = first_orders(orders_of(list(itertools.islice(stream, 6000))), known)

    assert len(live) > 2000
    assert 0.1 < sum(live) / len(live) < 0.3  # returning customers most, new ones still come
    assert sum(past) / len(past) < 0.45


def test_a_sku_is_a_product_variant_with_its_own_price_and_launches_are_few() -> None:
    """A SKU keeps its list price (a promotion takes at most 20 % off) and a customer mostly
    buys the variant they bought before; a variant is never sold before its launch (one
    launches during the run), and only the customers of a SKU's first 14 days (the history's
    first weeks, a launch's) buy it early (``early-adopter``): a minority that stays one as
    the run goes on, not most of them."""
    stream = OrderStream(5, 2000, START, mean_gap_s=0.2, history=6000)
    history = stream.history_orders()
    live = orders_of(list(itertools.islice(stream, 40_000)))
    variants = {v.sku: (product, v) for product in CATALOG for v in product.variants()}
    first_sale: dict[str, datetime] = {}
    bought: dict[str, dict[str, datetime]] = {}
    last_of: dict[tuple[str, str], str] = {}
    repeats = same = 0
    early_at_history_end = 0.0
    for count, order in enumerate(sorted([*history, *live], key=lambda o: o["created_at"])):
        if count == len(history):
            early_at_history_end = _early_share(bought, first_sale)
        at = datetime.fromisoformat(order["created_at"])
        customer = order["customer"]["id"]
        for line in order["lines"]:
            if line["category"] == INDUSTRIAL.category:
                continue
            product, variant = variants[line["sku"]]
            assert line["name"] == product.name
            price = Decimal(line["unit_price"])
            assert variant.list_price * Decimal("0.8") - 1 <= price <= variant.list_price
            assert at >= START - variant.on_sale_for
            first_sale.setdefault(line["sku"], at)
            bought.setdefault(customer, {}).setdefault(line["sku"], at)
            if (customer, product.sku) in last_of:
                repeats += 1
                same += last_of[customer, product.sku] == line["sku"]
            last_of[customer, product.sku] = line["sku"]

    assert any(v.on_sale_for.days < 365 for _, v in variants.values())
    launched_in_run = [sku for sku, (_, v) in variants.items() if v.on_sale_for < timedelta(0)]
    assert launched_in_run
    assert all(sku in first_sale for sku in launched_in_run)  # sold once launched
    assert len(first_sale) <= len(variants) < 100
    assert same / repeats > 0.6
    assert 0.03 < early_at_history_end < 0.2
    assert 0.03 < _early_share(bought, first_sale) < 0.2


def _early_share(bought: dict[str, dict[str, datetime]], first_sale: dict[str, datetime]) -> float:
    early = [
        customer
        for customer, skus in bought.items()
        if any(at - first_sale[sku] < timedelta(days=14) for sku, at in skus.items())
    ]
    return len(early) / len(bought)


def test_in_a_demo_shaped_run_only_bursts_look_like_velocity_fraud_and_vips_are_known() -> None:
    """5 orders a second from 5,000 customers, as ``make demo`` streams them: a customer's
    orders stay 5 minutes apart (bursts aside), so the velocity rule (5 in 10 minutes) sees
    only the bursts; the CRM's VIPs are frequent buyers the history already holds; most orders
    go to the customer's home address."""
    stream = OrderStream(7, 5000, START, mean_gap_s=0.2, history=10_000)
    known = {o["customer"]["id"] for o in stream.history_orders()}
    live = orders_of(list(itertools.islice(stream, 30_000)))
    times: dict[str, list[datetime]] = {}  # every order's, bursts' too
    plain: dict[str, list[datetime]] = {}  # those no burst could have placed
    bursting = set()
    for order in live:
        at = datetime.fromisoformat(order["created_at"])
        customer = order["customer"]["id"]
        times.setdefault(customer, []).append(at)
        burst_like = (
            order["shipping"]["method"] == "express"
            and order["payment"]["method"] == ("card")
            and all(line["sku"].startswith("PHONE-") for line in order["lines"])
        )
        if burst_like:
            bursting.add(customer)
        else:
            plain.setdefault(customer, []).append(at)
    crowded = {
        customer
        for customer, at in times.items()
        if any(
            later - earlier < timedelta(minutes=10)
            for earlier, later in zip(at, at[4:], strict=False)
        )
    }
    too_soon = [
        customer
        for customer, at in plain.items()
        if any(later - earlier < timedelta(minutes=5) for earlier, later in itertools.pairwise(at))
    ]
    vips = {o["customer"]["id"] for o in live if o["customer"]["vip"]}
    addresses: dict[str, Counter[tuple[str, str]]] = {}
    for order in live:
        shipping = order["shipping"]
        where = (shipping["province"], shipping["address"])
        addresses.setdefault(order["customer"]["id"], Counter())[where] += 1
    at_home = sum(counts.most_common(1)[0][1] for counts in addresses.values())

    assert len(live) > 8000
    assert too_soon == []  # 5 minutes apart, but for what a burst may have placed
    assert crowded
    assert crowded <= bursting  # only a burst trips the velocity rule
    assert vips
    assert vips <= known
    assert at_home / len(live) > 0.8

"""The order stream simulator: valid, reproducible, realistic in its mix."""

import itertools
from collections import Counter
from datetime import UTC, datetime

from services.simulator.stream import OrderStream
from shared.models import Order

START = datetime(2026, 11, 24, tzinfo=UTC)


def actions(seed: int, count: int) -> list[dict]:  # type: ignore[type-arg]
    return list(itertools.islice(OrderStream(seed, 500, START, mean_gap_s=2.0), count))


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    assert actions(7, 300) == actions(7, 300)
    assert actions(7, 300) != actions(8, 300)


def test_every_simulated_order_is_valid() -> None:
    orders = [a["order"] for a in actions(3, 2000) if a["type"] == "order"]

    assert len(orders) > 400
    for order in orders:
        Order.model_validate(order)


def test_the_mix_is_realistic() -> None:
    stream = actions(5, 6000)
    orders = [Order.model_validate(a["order"]) for a in stream if a["type"] == "order"]
    statuses = Counter(a["status"] for a in stream if a["type"] == "status")
    methods = Counter(o.shipping.method.value for o in orders)
    per_customer = Counter(o.customer.id for o in orders)

    assert methods["standard"] > methods["express"] > methods["same_day"] > 0
    assert {"processed", "shipped", "cancelled"} <= set(statuses)
    assert (
        0.01
        < sum(
            "加急" in o.notes
            or "urgent" in o.notes.lower()
            or "紧急" in o.notes
            or "asap" in o.notes
            for o in orders
        )
        / len(orders)
        < 0.1
    )
    top = per_customer.most_common(1)[0][1]
    median = sorted(per_customer.values())[len(per_customer) // 2]
    assert top >= 3 * median  # long-tailed: some customers order far more often
    assert any(any(ch > "\u4e00" for ch in o.customer.name) for o in orders)  # Chinese names
    assert any(o.customer.name.isascii() for o in orders)  # and English ones

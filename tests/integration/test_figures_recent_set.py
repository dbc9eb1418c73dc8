"""The recent orders Redis keeps of a customer past them stay in Redis's compact form."""

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from services.tagger.figure_keys import RECENT_ORDERS_WITH_MARGIN, Apply, keys_of
from services.tagger.figures import CustomerFigures
from tests.factories import customer_order

pytestmark = pytest.mark.integration
WHEN = datetime(2026, 11, 1, 9, tzinfo=UTC)


async def test_a_customer_past_the_recent_orders_kept_keeps_them_compact(
    redis_client: Redis, run_id: str
) -> None:
    """The recent orders kept (``RECENT_ORDERS_WITH_MARGIN``) stay within Redis's compact
    sorted-set limit even as an order is added before the trim: past it the set turns into a
    skiplist for good, at ~3x the memory (found by a rolling-update probe at 128 kept)."""
    live = CustomerFigures(redis_client)
    await live.reset()
    customer = f"{run_id}-heavy"
    orders = [
        customer_order(f"{run_id}-{n}", customer, WHEN + timedelta(hours=n)) for n in range(150)
    ]
    for start in range(0, len(orders), 40):
        await live.apply([Apply.of_order(order) for order in orders[start : start + 40]])

    recent = keys_of(customer)[3]
    assert await redis_client.zcard(recent) == RECENT_ORDERS_WITH_MARGIN
    assert await redis_client.object("encoding", recent) in (b"listpack", b"ziplist")

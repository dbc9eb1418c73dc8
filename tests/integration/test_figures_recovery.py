"""Redis loses the customer figures mid-stream (FLUSHALL, or a SIGKILL with or without its
append-only file): the tagger rebuilds them from MongoDB before it tags on, and every figure and
every customer tag ends as if nothing had happened."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.tagger import figure_keys, figures
from services.tagger.app import create_app as create_tagger
from services.tagger.customers.live_figures import read_live
from services.tagger.figure_keys import KEEP_RECENT_ORDERS, Apply, Reverse, keys_of
from services.tagger.figures import CustomerFigures
from services.tagger.order_record import OrderRecord
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from shared.models import OrderStatus
from tests.conftest import eventually
from tests.factories import customer_order
from tests.generated import order_stream
from tests.integration.accounting import assert_figures_recount_and_tags, stored_count
from tests.integration.conftest import publish_events, running, wait_for_orders
from tests.integration.servers import RedisServer

pytestmark = pytest.mark.integration


async def test_figures_flushed_mid_stream_are_rebuilt_before_tagging_goes_on(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    events, expected = order_stream(2000, customers=300, seed=23, prefix=run_id)
    created = sum(isinstance(e, OrderCreated) for e in events)
    async with tagger():
        await publish_events(tagger_settings, events)

        async def some_tagged() -> bool:
            return await stored_count(mongo_db) >= 300

        await eventually(some_tagged, within=60)
        await redis_client.flushall()
        flushed_at = await stored_count(mongo_db)
        await wait_for_orders(mongo_db, created, len(events), within=180)

    assert flushed_at < created, "the flush came too late to interrupt anything"
    await assert_figures_recount_and_tags(redis_client, mongo_db, expected)
    assert await CustomerFigures(redis_client).epoch() is not None


@pytest.mark.parametrize("append_only", [True, False], ids=["data-kept", "empty"])
async def test_redis_killed_mid_stream_the_tagger_waits_and_resumes_exactly(
    append_only: bool,
    tmp_path: Path,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    """SIGKILL of Redis: the consumer retries with backoff instead of committing, and goes on
    by itself when Redis is back; a restart from the append-only file may lack the last second
    of writes, so it too is rebuilt from MongoDB."""
    server = RedisServer(tmp_path / "redis", append_only=append_only)
    await server.start()
    settings = tagger_settings.model_copy(update={"redis_url": server.url})
    redis = Redis.from_url(server.url, socket_timeout=5, socket_connect_timeout=5)
    events, expected = order_stream(1500, customers=200, seed=29, prefix=run_id)
    created = sum(isinstance(e, OrderCreated) for e in events)
    try:
        async with running(create_tagger(settings)):
            await publish_events(settings, events)

            async def some_tagged() -> bool:
                return await stored_count(mongo_db) >= 300

            await eventually(some_tagged, within=60)
            await server.kill()
            killed_at = await stored_count(mongo_db)
            await server.start()
            await wait_for_orders(mongo_db, created, len(events), within=180)

        assert killed_at < created, "the kill came too late to interrupt anything"
        await assert_figures_recount_and_tags(redis, mongo_db, expected)
    finally:
        await redis.aclose()
        await server.stop()


async def test_no_order_is_counted_without_the_epoch_marker(
    redis_client: Redis, run_id: str
) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from services.tagger.figure_keys import Apply, epoch_key, slot_of
    from services.tagger.figures import FiguresLost

    figures = CustomerFigures(redis_client)
    customer = f"{run_id}-C"
    first = Apply(customer, f"{run_id}-1", Decimal("10.00"), datetime(2026, 1, 1, tzinfo=UTC))
    second = Apply(customer, f"{run_id}-2", Decimal("20.00"), datetime(2026, 1, 2, tzinfo=UTC))
    await figures.ensure_loaded(lambda: _no_documents())
    await figures.apply([first])
    await redis_client.delete(epoch_key(slot_of(customer)))  # that slot's marker alone

    with pytest.raises(FiguresLost):
        await figures.apply([second])

    totals = await figures.totals(customer)
    assert (totals.order_count, totals.lifetime_spend) == (1, Decimal("10.00"))


async def test_scripts_flushed_from_redis_are_loaded_again_and_count_once(
    redis_client: Redis, run_id: str
) -> None:
    """The figures' script calls go as bare EVALSHA: a Redis that lost its scripts (SCRIPT
    FLUSH, a restart) answers NOSCRIPT, gets them, and the pipeline runs once more."""
    from decimal import Decimal

    figures = CustomerFigures(redis_client)
    customer = f"{run_id}-C"
    first = Apply(customer, f"{run_id}-1", Decimal("10.00"), datetime(2026, 1, 1, tzinfo=UTC))
    second = Apply(customer, f"{run_id}-2", Decimal("20.00"), datetime(2026, 1, 2, tzinfo=UTC))
    await figures.ensure_loaded(lambda: _no_documents())
    await figures.apply([first])
    await redis_client.script_flush()

    before = await figures.apply([first, second])

    assert before[1] == FiguresSnapshot(
        prior_order_count=1,
        prior_lifetime_spend=Decimal("10.00"),
        spend_365d=Decimal("30.00"),
        recent_order_times=(datetime(2026, 1, 1, tzinfo=UTC).timestamp(),),
        first_order_at=datetime(2026, 1, 1, tzinfo=UTC).timestamp(),
    )
    totals = await figures.totals(customer)
    assert (totals.order_count, totals.lifetime_spend) == (2, Decimal("30.00"))


async def _no_documents() -> Any:
    return
    yield


async def test_a_rebuild_slower_than_its_lock_lifetime_keeps_the_lock(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that answers its first sorted batch after longer than the lock lasts (seen at
    load 15-20 on a large store): the lock is renewed on a timer, not only between chunks, so
    the rebuild ends instead of failing with RebuildLockLost."""
    monkeypatch.setattr(figures, "LOCK_TTL_MS", 300)

    async def slow_store() -> AsyncIterator[dict[str, Any]]:
        await asyncio.sleep(1.0)  # the store's first answer: three lock lifetimes
        return
        yield

    assert await CustomerFigures(redis_client).rebuild(slow_store()) == 0
    assert await CustomerFigures(redis_client).epoch() is not None


async def test_a_rebuild_in_any_order_ends_as_the_live_figures(
    redis_client: Redis, run_id: str
) -> None:
    """The rebuild reads orders in storage order (no sort for the server to hold): whatever
    the order it reads them in, every figure key ends as live tagging in time order left it,
    old days dropped included (a customer's orders span more than the spend window)."""
    customer = f"{run_id}-c"
    start = datetime(2024, 1, 5, 9, tzinfo=UTC)
    lines = [[("PH-1", "electronics", "120.00")], [("SOFA-2", "home", "899.50")]]
    orders = [
        customer_order(f"{run_id}-{i}", customer, start + timedelta(days=37 * i), lines[i % 2])
        for i in range(16)  # 555 days: past the 365-day window and its 31 days of slack
    ]
    live = CustomerFigures(redis_client)
    await live.reset()
    snapshots = await live.apply([Apply.of_order(order) for order in orders])
    reversed_no = orders[9].order_no
    assert await live.apply([Reverse(customer, reversed_no)]) == [True]
    documents = [
        OrderRecord(
            order,
            OrderStatus.PENDING,
            [],
            snapshot,
            contribution_reversed=order.order_no == reversed_no,
        ).to_document()
        for order, snapshot in zip(orders, snapshots, strict=True)
        if isinstance(snapshot, FiguresSnapshot)
    ]
    assert len(documents) == len(orders)
    want = await _figure_keys(redis_client, customer)

    for arrangement in (documents, documents[::-1], documents[1::2] + documents[::2]):
        await redis_client.flushall()

        async def stored() -> AsyncIterator[dict[str, Any]]:
            for document in arrangement:  # noqa: B023 - consumed within this iteration
                yield document

        assert await CustomerFigures(redis_client).rebuild(stored()) == len(orders)
        assert await _figure_keys(redis_client, customer) == want


async def _figure_keys(redis: Redis, customer: str) -> dict[str, Any]:
    """Every figure key of ``customer`` but the per-order contributions' expiry: their content."""
    keys = keys_of(customer)[1:]
    return {
        "totals": await redis.hgetall(keys[0]),
        "by_day": await redis.hgetall(keys[1]),
        "recent": await redis.zrange(keys[2], 0, -1, withscores=True),
        "by_category": await redis.hgetall(keys[3]),
        "products": await redis.hgetall(keys[4]),
    }


@pytest.mark.parametrize("margin", [False, True], ids=["kept-as-read", "margin-kept"])
async def test_the_recent_orders_read_after_reversals_equal_a_rebuilds(
    margin: bool, redis_client: Redis, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer past ``KEEP_RECENT_ORDERS`` orders whose newest ones are then cancelled.
    With the margin kept (``WRITE_RECENT_MARGIN``, this release), the recent orders read live
    (the rules' facts) equal those a rebuild from MongoDB gives, which holds only the orders
    that count, of which the newest are read. Kept as many as are read (as the release before
    kept them), the live set lost older orders for good and reads 8 fewer."""
    monkeypatch.setattr(figure_keys, "WRITE_RECENT_MARGIN", margin)
    customer = f"{run_id}-many"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    orders = [
        customer_order(
            f"{run_id}-{i}", customer, start + timedelta(hours=i), [("SKU-1", "home", "10.00")]
        )
        for i in range(KEEP_RECENT_ORDERS + 40)  # past the margin too: trimmed either way
    ]
    live = CustomerFigures(redis_client)
    await live.reset()
    snapshots = await live.apply([Apply.of_order(order) for order in orders])
    cancelled = sorted(order.order_no for order in orders[-8:])
    assert await live.apply([Reverse(customer, no) for no in cancelled]) == [True] * 8
    read = (await read_live(redis_client, [customer]))[customer]
    if not margin:  # as the release before kept them: 8 fewer read, for good
        assert len(read.recent_order_times) == KEEP_RECENT_ORDERS - 8
        return
    totals = await live.totals(customer)
    documents = [
        OrderRecord(
            order,
            OrderStatus.PENDING,
            [],
            snapshot,
            contribution_reversed=order.order_no in cancelled,
        ).to_document()
        for order, snapshot in zip(orders, snapshots, strict=True)
        if isinstance(snapshot, FiguresSnapshot)
    ]
    await redis_client.flushall()

    async def stored() -> AsyncIterator[dict[str, Any]]:
        for document in documents:
            yield document

    assert await CustomerFigures(redis_client).rebuild(stored()) == len(orders)
    rebuilt = (await read_live(redis_client, [customer]))[customer]
    assert len(rebuilt.recent_order_times) == KEEP_RECENT_ORDERS
    assert rebuilt.recent_order_times == read.recent_order_times
    assert await CustomerFigures(redis_client).totals(customer) == totals

"""The in-process benches call the tagger's own code directly, so a change there can break
``make bench`` unnoticed (``bench.tagger_cpu`` did once). Each runs here at a small scale on
the stack, and leaves the stack's own Redis database (a running demo's figures) alone."""

import gc
from typing import Any

import pytest
from pymongo import monitoring
from redis.asyncio import Redis

from bench import document_bytes, e2e_bench, ingest_cpu, tagger_cpu
from bench.written_forms import RELEASE_BEFORE_FORMS, written_as_before
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_the_tagger_cpu_bench_runs_in_a_redis_database_of_its_own(settings: Settings) -> None:
    redis: Redis[Any] = Redis.from_url(settings.redis_url)
    try:
        await redis.set("bench-sentinel", "kept")
        keys_before = await redis.dbsize()

        figures = await tagger_cpu.measure(300, 1, None)
        assert gc.get_freeze_count() == 0  # the heap set aside for the rounds, then put back

        assert await redis.get("bench-sentinel") == b"kept"
        assert await redis.dbsize() == keys_before
    finally:
        await redis.delete("bench-sentinel")
        await redis.aclose()
    median = figures["median"]
    assert median["tagger_us"] > median["floor_us"] > 0
    assert 500 < median["stored_bytes_per_order"] < 5_000


async def test_the_ingest_cpu_bench_runs_in_a_redis_database_of_its_own(settings: Settings) -> None:
    redis: Redis[Any] = Redis.from_url(settings.redis_url)
    try:
        await redis.set("bench-sentinel", "kept")
        keys_before = await redis.dbsize()

        figures = await ingest_cpu.run(orders=1_000, rounds=2)

        assert await redis.get("bench-sentinel") == b"kept"
        assert await redis.dbsize() == keys_before  # the claims went to the scratch database
    finally:
        await redis.delete("bench-sentinel")
        await redis.aclose()
    assert len(figures["us_per_order_by_round"]) == 2
    assert figures["us_per_order"] > 0
    assert f"{figures['us_per_order']:.1f} µs an order" in ingest_cpu.markdown(figures)


async def test_the_document_bytes_bench_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def registered_for_every_client(listener: object) -> None:
        raise AssertionError(f"{listener!r} registered for every client, and kept for good")

    # its command counter listens to its own client: registered for all, it stayed, and
    # bson-encoded every later client's writes in the process (the tests after it too)
    monkeypatch.setattr(monitoring, "register", registered_for_every_client)
    figures = await document_bytes.measure(300)

    assert figures["tagged_orders"] == 300
    assert figures["documents_per_order"] == 1.0  # the order: it keeps its first change
    assert 500 < figures["bytes_per_order"] < 5_000
    # each order also writes its customer (300 orders over 2,000 customers: mostly new ones)
    customers = figures["customer_writes"]
    assert 0.5 < customers["documents_per_order"] <= 1.0
    assert customers["fields_per_order"]["customers: (inserted documents)"] > 0
    assert customers["bytes_per_order"] > 100  # a new customer's document is ~0.5 KB
    assert figures["bytes_per_order_with_customers"] > figures["bytes_per_order"] + 100
    assert "customer's update" in document_bytes.markdown(
        {"local_server": figures, "mongodb": figures}
    )


async def test_the_forms_written_now_take_bytes_off_the_release_befores_put_back() -> None:
    now = await document_bytes.measure(300, unique_indexes_only=False)
    with written_as_before():
        assert not any(getattr(m, name) for m, name in RELEASE_BEFORE_FORMS)
        before = await document_bytes.measure(300, unique_indexes_only=False)
    assert all(getattr(module, name) for module, name in RELEASE_BEFORE_FORMS)
    assert now["bytes_per_order"] < before["bytes_per_order"] - 50
    assert now["customer_writes"]["bytes_per_order"] < before["customer_writes"]["bytes_per_order"]


async def test_the_end_to_end_bench_measures_the_urgent_share_of_a_mixed_stream() -> None:
    """The shop's-share row: only every sixth order is urgent, latency is taken over those, and
    each of them reaches the page and the webhook (200 orders at 100/s, single ``POST /orders``)."""
    results = await e2e_bench.run((), 2.0, {100: e2e_bench.SHOP_URGENT_SHARE})

    row = results["with_a_shops_share"]["100"]
    assert results["rates"] == {}
    assert row["orders"] == 200
    assert row["alerting_orders"] == 34  # orders 0, 6, 12, ... 198
    assert row["accepted"] == 200
    assert row["page"]["seen"] == row["webhook"]["seen"] == 34
    assert 0 < row["page"]["p50_ms"] <= row["page"]["p99_ms"] < 60_000
    assert set(row["cpu_us_per_order"]) >= {"ingest", "tagger", "notifier"}

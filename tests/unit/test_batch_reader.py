"""The batch cap holds before any order is built: memory stays flat whatever the body holds."""

import json
import tracemalloc

import pytest

from services.ingest.batch import BatchReader, BatchTooLarge, count_items
from tests.factories import order_payload


def test_counting_stops_past_the_cap() -> None:
    body = b'{"orders":[' + b",".join([b"{}"] * 100_000) + b"]}"

    assert count_items(body, 1000) == 1001
    assert count_items(b'{"orders":[{"a":[1,2]},3,"x",null]}', 10) == 4
    assert count_items(b"not json", 10) == 0


async def test_a_huge_batch_of_tiny_items_is_refused_without_building_them() -> None:
    body = b'{"orders":[' + b",".join([b"{}"] * 2_796_000) + b"]}"
    reader = BatchReader(max_batch=1000)

    tracemalloc.start()
    try:
        with pytest.raises(BatchTooLarge) as refused:
            await reader.read(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert refused.value.field == "orders"
    assert peak < 20 * 1024 * 1024  # the 2.8 M items were never Python objects


async def test_a_small_body_over_the_cap_is_refused_too() -> None:
    body = json.dumps({"orders": [{}] * 11}).encode()

    with pytest.raises(BatchTooLarge):
        await BatchReader(max_batch=10).read(body)


async def test_valid_and_invalid_orders_of_a_big_body_are_told_apart() -> None:
    orders = [order_payload(f"SO-{i}", notes="n" * 600) for i in range(400)]
    orders[7]["lines"][0]["quantity"] = 0
    body = json.dumps({"orders": orders}).encode()
    assert len(body) > 256 * 1024  # read off the event loop

    valid, invalid = await BatchReader(max_batch=1000).read(body)

    assert len(valid) == 399
    assert [(r.index, r.errors[0]["field"]) for r in invalid] == [(7, "lines.0.quantity")]

"""What the customer figures cost in Redis memory, per customer and per million customers.

A year of simulated orders (``OrderStream`` history: log-normal baskets, returning customers,
cancellations and returns) is counted through ``figures.lua`` into a scratch redis-server of its
own; then ``MEMORY USAGE`` of every key, by kind. ``by-category`` and ``products`` (and the
items on each order's contribution) are what customer tags added.

    uv run python -m bench.customer_memory_bench [customers] [orders]
"""

import asyncio
import shutil
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime

from redis.asyncio import Redis

from bench.harness import free_port
from services.simulator.stream import OrderStream
from services.tagger.figure_keys import Apply, Reverse
from services.tagger.figures import CustomerFigures
from shared.models import Order

BATCH = 500


async def measure(customers: int, orders: int) -> dict[str, float]:
    port = free_port()
    folder = tempfile.mkdtemp(prefix="ot-memory-")
    server = await asyncio.create_subprocess_exec(
        shutil.which("redis-server") or "redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", folder,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    redis = Redis(port=port)
    try:
        for _ in range(100):
            try:
                await redis.ping()
                break
            except ConnectionError:
                await asyncio.sleep(0.1)
        figures = CustomerFigures(redis)
        await figures.reset()
        stream = OrderStream(7, customers, datetime.now(UTC), history=orders)
        operations: list[Apply | Reverse] = []
        for payload in stream.history_orders():
            order = Order.model_validate(payload)
            operations.append(Apply.of_order(order))
            if order.status.value in ("cancelled", "returned"):
                operations.append(Reverse(order.customer.id, order.order_no))
            if len(operations) >= BATCH:
                await figures.apply(operations)
                operations.clear()
        if operations:
            await figures.apply(operations)
        by_kind: dict[str, int] = defaultdict(int)
        held: set[bytes] = set()
        async for key in redis.scan_iter(match="ot:{*", count=1000):
            kind = key.decode().rsplit("}:", 1)[1].split(":", 1)[0]
            by_kind[kind] += await redis.memory_usage(key, samples=0) or 0
            if kind == "totals":
                held.add(key)
        # what the items add to each order's contribution: measure, drop them, measure again
        with_items = by_kind["order"]
        async for key in redis.scan_iter(match="ot:{*}:order:*", count=1000):
            await redis.hdel(key, "cats", "skus")
        without = 0
        async for key in redis.scan_iter(match="ot:{*}:order:*", count=1000):
            without += await redis.memory_usage(key, samples=0) or 0
        seen = len(held)
        result = {kind: size / seen for kind, size in sorted(by_kind.items())}
        result["order items"] = (with_items - without) / seen
        result["customers"] = seen
        result["orders"] = orders
        return result
    finally:
        await redis.aclose()
        server.terminate()
        await server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    orders = int(sys.argv[2]) if len(sys.argv) > 2 else 60_000
    result = asyncio.run(measure(customers, orders))
    seen = int(result.pop("customers"))
    count = int(result.pop("orders"))
    print(f"{count} orders of a year over {seen} customers ({count / seen:.1f} orders each)")
    added = ("by-category", "products", "order items")
    for kind, size in result.items():
        mark = " (customer tags)" if kind in added else ""
        print(f"  {kind:<12} {size:8.0f} B/customer  {size * 1e6 / 2**20:8.0f} MiB/million{mark}")
    total = sum(v for k, v in result.items() if k != "order items")
    extra = sum(result[k] for k in added)
    print(f"  all keys     {total:8.0f} B/customer  {total * 1e6 / 2**20:8.0f} MiB/million")
    print(f"  customer tags' share: {extra:.0f} B/customer = {extra * 1e6 / 2**20:.0f} MiB/million")


if __name__ == "__main__":
    main()

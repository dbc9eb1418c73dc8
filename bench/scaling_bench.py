"""How the tagger's cost per order grows with the number of rules and of customers."""

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bench.orders import order_payloads
from services.tagger.figure_keys import Apply
from services.tagger.figures import CustomerFigures
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleSet, load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.models import Order
from shared.settings import Settings

SCRATCH_DATABASE = 15  # a Redis database of its own, flushed by this bench


def scratch_redis() -> Redis:
    """The stack's Redis (``ORDERTAG_REDIS_URL``), in the bench's own database."""
    url = urlsplit(Settings().redis_url)._replace(path=f"/{SCRATCH_DATABASE}")
    return Redis.from_url(urlunsplit(url), socket_timeout=120)


def rule_set_of(size: int) -> RuleSet:
    """The default rules plus synthetic ones (threshold and category tests, some nested)."""
    base = load_rules(DEFAULT_RULES_FILE)
    extra = max(size - len(base.rules), 0)
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    for i in range(extra):
        data["tags"].append({"name": f"syn-{i}", "description": "synthetic"})
        condition: dict[str, Any] = (
            {"fact": "amount", "gte": 100 + i * 7}
            if i % 3 == 0
            else {"fact": "categories", "in": ["books", "toys"]}
            if i % 3 == 1
            else {
                "all": [
                    {"fact": "customer.prior_order_count", "gte": i % 5},
                    {"not": {"fact": "region", "eq": "east-china"}},
                ]
            }
        )
        data["rules"].append(
            {
                "id": f"syn.{i}",
                "version": 1,
                "tag": f"syn-{i}",
                "when": condition,
                "reason": "synthetic rule {amount}",
            }
        )
    return RuleSet.model_validate(data)


def rules_cost(sizes: tuple[int, ...] = (10, 100, 1000), orders: int = 2000) -> dict[str, Any]:
    rng = random.Random(3)
    sample = [Order.model_validate(p) for p in order_payloads(orders, "RULES")]
    figures = [
        FiguresSnapshot(
            prior_order_count=rng.randint(0, 9),
            prior_lifetime_spend=Decimal(rng.randint(0, 90_000)),
        )
        for _ in sample
    ]
    results: dict[str, Any] = {}
    now = datetime.now(UTC)
    for size in sizes:
        rules = rule_set_of(size)
        started = time.perf_counter()
        for order, snapshot in zip(sample, figures, strict=True):
            decisions = decide(rules, order_facts(order, snapshot))
            merge_tags(
                [], decisions, exclusive_families=rules.exclusive_families, max_tags=20, at=now
            )
        per_order = (time.perf_counter() - started) / orders * 1e6
        results[str(len(rules.rules))] = {"us_per_order": round(per_order, 1)}
    first = next(iter(results.values()))["us_per_order"]
    for entry in results.values():
        entry["vs_smallest"] = round(entry["us_per_order"] / first, 2)
    return results


async def customers_cost(
    sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000), orders: int = 5_000
) -> dict[str, Any]:
    redis = scratch_redis()
    figures = CustomerFigures(redis)
    rng = random.Random(5)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    results: dict[str, Any] = {}
    try:
        for size in sizes:
            await redis.flushdb()
            await figures.reset()  # loaded and empty: the script refuses to count without it
            fill_started = time.perf_counter()
            for first in range(0, size, 5_000):  # one earlier order per customer
                await figures.apply(
                    [
                        Apply(f"c{i}", f"fill-{i}", Decimal("99.00"), start + timedelta(seconds=i))
                        for i in range(first, min(first + 5_000, size))
                    ]
                )
            fill_seconds = time.perf_counter() - fill_started
            operations = [
                Apply(
                    f"c{rng.randrange(size)}",
                    f"o-{size}-{n}",
                    Decimal("120.00"),
                    start + timedelta(days=30, seconds=n),
                )
                for n in range(orders)
            ]
            started = time.perf_counter()
            for first in range(0, orders, 500):  # batches as the tagger sends them
                await figures.apply(operations[first : first + 500])
            per_order = (time.perf_counter() - started) / orders * 1e6
            info = await redis.info("memory")
            results[str(size)] = {
                "us_per_order": round(per_order, 1),
                "fill_seconds": round(fill_seconds, 1),
                "redis_used_mb": round(info["used_memory"] / 2**20, 1),
            }
        await redis.flushdb()
        await compact_append_only_file(redis)  # the fill has grown it
    finally:
        await redis.aclose()
    first_cost = next(iter(results.values()))["us_per_order"]
    for entry in results.values():
        entry["vs_smallest"] = round(entry["us_per_order"] / first_cost, 2)
    return results


async def compact_append_only_file(redis: Redis) -> None:
    """Have Redis rewrite its append-only file. A rewrite under way already (Redis starts one
    of its own as the file grows past its last size) compacts it as well: Redis refuses a
    second one with an error, which is no failure of the bench."""
    try:
        await redis.bgrewriteaof()
    except ResponseError as error:
        if "already in progress" not in str(error):
            raise

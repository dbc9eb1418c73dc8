"""Ingest's own CPU per order on the batch path, in one process, on the real Kafka and Redis.

``POST /orders/batch`` minus the HTTP server: each batch body goes through the route's own
``answer_batch`` (parse and validate, the claims in Redis, the events to Kafka acknowledged,
the claims confirmed, the answer's JSON), one batch after the other, with cycle collection
held off as the route holds it. The process's CPU time over the orders is ingest's cost; the
servers' CPU is theirs, and waiting on them costs nothing here. What the whole service does,
HTTP included, against the raw producer is ``bench.ingest_bench``; this isolates the part
ingest's own code decides, with little noise, so two trees can be compared round by round:

    python -m bench.ingest_cpu [--orders 15000] [--rounds 5] [--profile FILE]

``--profile`` writes a cProfile of one more round (``python -m pstats FILE``).
"""

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import time
from typing import Any

from bench.harness import delete_benchmark_topics, isolated_settings, run_prefix
from bench.orders import order_payloads
from bench.tagger_cpu import heap_set_aside, scratch_redis_url
from services.ingest.bootstrap import Ingest, bootstrap
from services.ingest.routes.orders import answer_batch
from services.ingest.settings import IngestSettings
from shared.gc_tuning import cycles_collected_after

BATCH = 500


def bodies_of(count: int) -> list[bytes]:
    """Fresh orders (a new prefix: never claimed before) as a connector's batch bodies."""
    payloads = order_payloads(count, run_prefix())
    return [
        json.dumps({"orders": payloads[i : i + BATCH]}).encode() for i in range(0, count, BATCH)
    ]


async def one_round(ingest: Ingest, bodies: list[bytes]) -> float:
    """CPU µs per order over ``bodies``, every order accepted (checked: a refused order would
    cost less and flatter the figure)."""
    orders = 0
    started = time.process_time()
    for body in bodies:
        with cycles_collected_after():  # as the route holds it
            answer = await answer_batch(body, ingest.intake, ingest.batches)
        accepted = json.loads(bytes(answer.body))["accepted"]
        orders += accepted
    spent = time.process_time() - started
    expected = sum(body.count(b'"order_no"') for body in bodies)
    if orders != expected:
        raise RuntimeError(f"{expected - orders} of {expected} orders were not accepted")
    return spent / orders * 1e6


async def run(orders: int = 15_000, rounds: int = 5, profile: str | None = None) -> dict[str, Any]:
    """A warm-up round, then ``rounds`` measured ones, each on orders of its own. The claims go
    to the scratch Redis database (emptied after) and the events to topics of the run's own
    (deleted after), so a demo's stack keeps nothing of it."""
    stack = IngestSettings()
    if stack.redis_cluster:  # a cluster has one database only
        raise SystemExit("bench.ingest_cpu needs a one-node Redis (the local stack's)")
    settings = stack.model_copy(
        update={
            "redis_url": scratch_redis_url(stack.redis_url),
            "topics": isolated_settings("ingest-cpu").topics,
        }
    )
    by_round, loads = [], []
    try:
        async with bootstrap(settings) as ingest:
            await ingest.redis.flushdb()
            with heap_set_aside():
                await one_round(ingest, bodies_of(BATCH * 4))  # imports, caches, leaders
                for _ in range(rounds):
                    loads.append(round(os.getloadavg()[0], 2))
                    by_round.append(round(await one_round(ingest, bodies_of(orders)), 1))
                if profile:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await one_round(ingest, bodies_of(orders))
                    profiler.disable()
                    profiler.dump_stats(profile)
            await ingest.redis.flushdb()
    finally:
        await delete_benchmark_topics()
    return {
        "orders_per_round": orders,
        "batch": BATCH,
        "us_per_order_by_round": by_round,
        "us_per_order": statistics.median(by_round),
        "load_by_round": loads,
    }


def markdown(figures: dict[str, Any]) -> str:
    """The section of benchmarks.md: ingest's own CPU per order in process, every round."""
    rounds = ", ".join(f"{us:.1f}" for us in figures["us_per_order_by_round"])
    loads = ", ".join(f"{load:.1f}" for load in figures["load_by_round"])
    return "\n".join(
        [
            "",
            "## Ingest's own CPU per order, in process",
            "",
            f"`bench/ingest_cpu.py`: {figures['orders_per_round']:,} fresh orders a round in"
            f" batches of {figures['batch']}, each through the batch route's own `answer_batch`"
            " (validation, the claims in Redis, the events to Kafka acknowledged, the claims"
            " confirmed, the answer) one after the other; the process's CPU over the orders."
            " What the HTTP server adds, and the ratio against the raw producer, are in the"
            " ingest section above.",
            "",
            f"- **{figures['us_per_order']:.1f} µs an order** (median of rounds: {rounds};"
            f" load {loads})",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=15_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile")
    args = parser.parse_args()
    result = asyncio.run(run(args.orders, args.rounds, args.profile))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

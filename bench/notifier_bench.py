"""The notifier's cost per alert: a `tagged` topic prefilled by the real tagger with orders that
each raise one alert (every order urgent), consumed by one notifier process that stores each
alert, shows it on the live page and delivers it to a webhook. Reports alerts per second and
the CPU per alert of the notifier and of each server of the stack, so the end-to-end table's
notifier share can be read on its own.

``python -m bench.notifier_bench [alerts] [rounds]``"""

import asyncio
import json
import statistics
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from bench.e2e_bench import notifier_to_webhook
from bench.harness import (
    cpu_seconds,
    isolated_settings,
    produce,
    rate,
    run_prefix,
    service,
    stack_pids,
)
from bench.orders import order_payloads
from bench.tagger_bench import consume_span
from shared.events import OrderCreated
from shared.kafka import ensure_topics
from shared.models import Order
from shared.mongo import make_mongo_client
from shared.settings import Settings


async def tagged_topic(settings: Settings, count: int) -> None:
    """``count`` urgent orders through the real tagger onto the tagged topic."""
    payloads = order_payloads(count, run_prefix())
    for payload in payloads:
        payload["shipping"]["method"] = "same_day"
    await produce(
        settings, [OrderCreated(order=Order.model_validate(p)) for p in payloads], warm_up=True
    )
    async with service("tagger", settings, "ORDERTAG_TAGGER_PORT"):
        await consume_span(settings, settings.topics.tagged, count, within=900)


async def one_round(count: int) -> dict[str, Any]:
    settings = isolated_settings("notifier")
    await ensure_topics(settings)
    await tagged_topic(settings, count)
    delivered: dict[str, float] = {}
    async with AsyncExitStack() as stack:
        pids = stack_pids()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        _, notifier = await notifier_to_webhook(stack, settings, delivered)
        pids["notifier"] = notifier.pid
        before["notifier"] = 0.0  # its whole life: start-up is part of what it costs
        async with asyncio.timeout(900):
            while len(delivered) < count:  # noqa: ASYNC110  (the receiver records arrivals)
                await asyncio.sleep(0.05)
        seconds = max(delivered.values()) - started
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    mongo = make_mongo_client(settings)
    try:  # the round's orders and alerts are not kept
        await mongo.drop_database(settings.mongo_database)
    finally:
        await mongo.close()
    return {
        "alerts": count,
        "seconds": round(seconds, 2),
        "alerts_per_s": rate(count, seconds),
        "cpu_us_per_alert": {name: round(s / count * 1e6) for name, s in cpu.items()},
    }


async def run(count: int = 5_000, rounds: int = 3) -> dict[str, Any]:
    results = [await one_round(count) for _ in range(rounds)]
    for number, result in enumerate(results, 1):
        print(f"round {number}: {json.dumps(result)}", flush=True)
    return {
        "rounds": results,
        "median_alerts_per_s": statistics.median(r["alerts_per_s"] for r in results),
        "median_notifier_cpu_us_per_alert": statistics.median(
            r["cpu_us_per_alert"]["notifier"] for r in results
        ),
    }


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(asyncio.run(run(*arguments)), indent=1))

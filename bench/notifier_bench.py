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

import httpx
from prometheus_client.parser import text_string_to_metric_families

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


async def store_figures(notifier_url: str) -> dict[str, dict[str, int]]:
    """The notifier's MongoDB commands so far and the documents they touched, by command (its
    ``ordertag_notifier_store_*`` counters); the start-up's few reads and index checks count."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{notifier_url}/metrics/")).text
    figures: dict[str, dict[str, int]] = {"commands": {}, "documents": {}}
    for family, key in (("commands", "store_commands"), ("documents", "store_documents")):
        for sample in text_string_to_metric_families(text):
            if sample.name == f"ordertag_notifier_{key}":
                for point in sample.samples:
                    if point.name.endswith("_total"):
                        figures[family][point.labels["command"]] = int(point.value)
    return figures


async def one_round(count: int) -> dict[str, Any]:
    settings = isolated_settings("notifier")
    await ensure_topics(settings)
    await tagged_topic(settings, count)
    delivered: dict[str, float] = {}
    async with AsyncExitStack() as stack:
        pids = stack_pids()
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        url, notifier = await notifier_to_webhook(stack, settings, delivered)
        pids["notifier"] = notifier.pid
        before["notifier"] = 0.0  # its whole life: start-up is part of what it costs
        at_ready = cpu_seconds(notifier.pid)  # and from when it serves: the steady state
        async with asyncio.timeout(900):
            while len(delivered) < count:  # noqa: ASYNC110  (the receiver records arrivals)
                await asyncio.sleep(0.05)
        seconds = max(delivered.values()) - started
        store = await store_figures(url)
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
        "notifier_cpu_us_per_alert_from_ready": round((cpu["notifier"] - at_ready) / count * 1e6),
        "store_commands_per_alert": round(sum(store["commands"].values()) / count, 3),
        "store_documents_per_alert": round(sum(store["documents"].values()) / count, 2),
        "store_commands": store["commands"],
        "store_documents": store["documents"],
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
        "median_notifier_cpu_us_per_alert_from_ready": statistics.median(
            r["notifier_cpu_us_per_alert_from_ready"] for r in results
        ),
        "median_mongo_cpu_us_per_alert": statistics.median(
            r["cpu_us_per_alert"].get("mongo", 0) for r in results
        ),
        "median_store_commands_per_alert": statistics.median(
            r["store_commands_per_alert"] for r in results
        ),
        "median_store_documents_per_alert": statistics.median(
            r["store_documents_per_alert"] for r in results
        ),
    }


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(asyncio.run(run(*arguments)), indent=1))

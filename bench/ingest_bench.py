"""Ingest throughput: POST /orders (64 clients), POST /orders/batch (500 a batch), and the raw
aiokafka producer ceiling for the same events."""

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp

from bench.harness import UNLIMITED, Timer, isolated_settings, produce, rate, run_prefix, service
from bench.orders import order_payloads
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.events import OrderCreated
from shared.models import Order

HEADERS = {API_KEY_HEADER: LOCAL_DEV_KEY}


async def raw_producer_ceiling(count: int) -> dict[str, Any]:
    events = [
        OrderCreated(order=Order.model_validate(p)) for p in order_payloads(count, run_prefix())
    ]
    seconds = await produce(isolated_settings("raw"), events, warm_up=True)
    return {"orders": count, "seconds": round(seconds, 2), "orders_per_s": rate(count, seconds)}


async def single_endpoint(count: int, clients: int = 64) -> dict[str, Any]:
    """64 concurrent clients, one order per request (aiohttp: httpx's pool is the bottleneck at
    this concurrency and would measure the client, not the server)."""
    settings = isolated_settings("single")
    payloads = [json.dumps(p).encode() for p in order_payloads(count, run_prefix())]
    statuses: Counter[int] = Counter()
    async with service("ingest", settings, "ORDERTAG_INGEST_PORT", **UNLIMITED) as (url, _):
        connector = aiohttp.TCPConnector(limit=clients)
        headers = {**HEADERS, "content-type": "application/json"}
        async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:

            async def worker(bodies: list[bytes]) -> None:
                for body in bodies:
                    async with session.post("/orders", data=body) as answer:
                        await answer.read()
                        statuses[answer.status] += 1

            with Timer() as timer:
                await asyncio.gather(*(worker(payloads[i::clients]) for i in range(clients)))
    return {
        "orders": count,
        "clients": clients,
        "seconds": round(timer.seconds, 2),
        "orders_per_s": rate(count, timer.seconds),
        "statuses": dict(statuses),
    }


async def batch_endpoint(count: int, batch_size: int = 500, concurrent: int = 2) -> dict[str, Any]:
    settings = isolated_settings("batch")
    payloads = order_payloads(count, run_prefix())
    bodies = [
        json.dumps({"orders": payloads[i : i + batch_size]}).encode()
        for i in range(0, count, batch_size)
    ]
    headers = {**HEADERS, "content-type": "application/json"}
    async with (
        service("ingest", settings, "ORDERTAG_INGEST_PORT", **UNLIMITED) as (url, _),
        aiohttp.ClientSession(url, headers=headers) as session,
    ):
        semaphore = asyncio.Semaphore(concurrent)

        async def send(body: bytes) -> int:
            async with semaphore, session.post("/orders/batch", data=body) as answer:
                answer.raise_for_status()
                return int((await answer.json())["accepted"])

        with Timer() as timer:
            accepted = sum(await asyncio.gather(*(send(body) for body in bodies)))
    return {
        "orders": count,
        "batch_size": batch_size,
        "accepted": accepted,
        "seconds": round(timer.seconds, 2),
        "orders_per_s": rate(count, timer.seconds),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, with every run's rate beside it."""
    ordered = sorted(runs, key=lambda run: run["orders_per_s"])
    return {**ordered[len(ordered) // 2], "rates_of_runs": [r["orders_per_s"] for r in runs]}


async def run(scale: float = 1.0, rounds: int = 3) -> dict[str, Any]:
    """Ceiling and batch endpoint in alternating rounds (each a fresh topic and service), the
    median of each: single runs of a second or two swing by 10-20% on a shared machine. A
    first, unreported round warms the broker (a freshly started JVM runs slow for a while)."""
    count = int(20_000 * scale)
    raws, batches = [], []
    for round_ in range(rounds + 1):
        raw, batch = await raw_producer_ceiling(count), await batch_endpoint(count)
        if round_ > 0:
            raws.append(raw)
            batches.append(batch)
    raw, batch = median_run(raws), median_run(batches)
    single = await single_endpoint(int(5_000 * scale))
    return {
        "raw_producer": raw,
        "post_orders": single,
        "post_orders_batch": batch,
        "batch_vs_raw": round(batch["orders_per_s"] / raw["orders_per_s"], 3),
        "single_vs_raw": round(single["orders_per_s"] / raw["orders_per_s"], 3),
    }

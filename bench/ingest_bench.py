"""Ingest throughput: POST /orders (64 clients), POST /orders/batch (500 a batch), and the raw
aiokafka producer ceiling for the same events."""

import asyncio
import json
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.harness import (
    UNLIMITED,
    Timer,
    cpu_seconds,
    isolated_settings,
    produce,
    rate,
    run_prefix,
    service,
    stack_pids,
)
from bench.orders import order_payloads
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.events import OrderCreated
from shared.models import Order

HEADERS = {API_KEY_HEADER: LOCAL_DEV_KEY}


class CpuMeter:
    """CPU each named process spent between ``start`` and ``stop``, in µs per order: which
    process binds, and what each costs, when a ratio alone would hide it."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._started: dict[str, float] = {}
        self.us_per_order: dict[str, float] = {}

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self, orders: int) -> None:
        self.us_per_order = {
            name: round((cpu_seconds(pid) - self._started[name]) / orders * 1e6, 1)
            for name, pid in self._pids.items()
            if name in self._started
        }


async def raw_producer_ceiling(count: int) -> dict[str, Any]:
    events = [
        OrderCreated(order=Order.model_validate(p)) for p in order_payloads(count, run_prefix())
    ]
    kafka = CpuMeter({k: v for k, v in stack_pids().items() if k == "kafka"})
    kafka.start()
    producer_started = time.process_time()  # this process: the producer (and its warm-up)
    seconds = await produce(isolated_settings("raw"), events, warm_up=True)
    producer_us = round((time.process_time() - producer_started) / count * 1e6, 1)
    kafka.stop(count)
    return {
        "orders": count,
        "seconds": round(seconds, 2),
        "orders_per_s": rate(count, seconds),
        "cpu_us_per_order": {"producer": producer_us, **kafka.us_per_order},
    }


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
        service("ingest", settings, "ORDERTAG_INGEST_PORT", **UNLIMITED) as (url, process),
        aiohttp.ClientSession(url, headers=headers) as session,
    ):
        pids = {k: v for k, v in stack_pids().items() if k in ("kafka", "redis")}
        cpu = CpuMeter({"ingest": process.pid, **pids})
        semaphore = asyncio.Semaphore(concurrent)

        async def send(body: bytes) -> int:
            async with semaphore, session.post("/orders/batch", data=body) as answer:
                answer.raise_for_status()
                return int((await answer.json())["accepted"])

        cpu.start()
        with Timer() as timer:
            accepted = sum(await asyncio.gather(*(send(body) for body in bodies)))
        cpu.stop(count)
    return {
        "orders": count,
        "batch_size": batch_size,
        "accepted": accepted,
        "seconds": round(timer.seconds, 2),
        "orders_per_s": rate(count, timer.seconds),
        "cpu_us_per_order": cpu.us_per_order,
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
        # each round's own ratio (the ceiling, then the endpoint: the same load on the machine)
        "batch_vs_raw_by_round": [
            round(b["orders_per_s"] / r["orders_per_s"], 3)
            for r, b in zip(raws, batches, strict=True)
        ],
        "single_vs_raw": round(single["orders_per_s"] / raw["orders_per_s"], 3),
    }

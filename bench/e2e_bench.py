"""End-to-end latency: order accepted by ingest → alert visible on the support page (SSE) and
→ webhook received, at fixed rates; and each service's peak memory."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.harness import (
    UNLIMITED,
    cpu_seconds,
    free_port,
    isolated_settings,
    percentile,
    run_prefix,
    service,
    stack_pids,
)
from bench.orders import order_payloads
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.kafka import ensure_topics
from shared.mongo import make_mongo_client
from shared.settings import Settings
from shared.tasks import cancel_and_wait

HEADERS = {API_KEY_HEADER: LOCAL_DEV_KEY}
BATCH_FROM_RATE = 500  # from this rate orders arrive as a shop's connector sends them: batches
BATCH_EVERY_S = 0.1
# About the share of a shop's orders that are urgent in the simulator's stream (express 12 %,
# same-day 2 %, urgent notes and deliveries asked within a day ~3 %: docs/simulator.md)
SHOP_URGENT_SHARE = 1 / 6


@asynccontextmanager
async def webhook_receiver(arrivals: dict[str, float]) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        now = time.perf_counter()
        for alert in (await request.json())["alerts"]:
            arrivals.setdefault(alert["order_no"], now)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def follow_page(url: str, arrivals: dict[str, float], ready: asyncio.Event) -> None:
    """What a support page's EventSource sees: alert created events."""
    async with (
        aiohttp.ClientSession(headers=HEADERS) as session,
        session.get(f"{url}/api/events", timeout=aiohttp.ClientTimeout(total=None)) as stream,
    ):
        async for line in stream.content:
            if line.startswith(b": connected"):
                ready.set()
            if line.startswith(b"data: "):
                change = json.loads(line[6:])
                if change["change"] == "created":
                    arrivals.setdefault(change["alert"]["order_no"], time.perf_counter())


def write_routing(path: Path, hook_url: str) -> Path:
    """Every urgent order alerts the webhook, with no rate limit in the way."""
    path.write_text(
        json.dumps(
            {
                "channels": [
                    {
                        "id": "hook",
                        "type": "webhook",
                        "url": hook_url,
                        "unsigned": True,  # a local receiver: no secret to verify
                        "rate_per_minute": 60000,
                    }
                ],
                "routes": [
                    {
                        "id": "urgent",
                        "kind": "urgent",
                        "severity": "critical",
                        "team": "support",
                        "when_tags_any": ["urgent"],
                        "channels": ["hook"],
                    }
                ],
            }
        )
    )
    return path


async def notifier_to_webhook(
    stack: AsyncExitStack, settings: Settings, arrivals: dict[str, float]
) -> tuple[str, asyncio.subprocess.Process]:
    """A notifier process whose every urgent alert goes to a local webhook recording when each
    order's alert arrived; stopped with ``stack``."""
    hook_url = await stack.enter_async_context(webhook_receiver(arrivals))
    routing = write_routing(Path(f"/tmp/{settings.mongo_database}-routing.json"), hook_url)  # noqa: S108
    return await stack.enter_async_context(
        service(
            "notifier",
            settings,
            "ORDERTAG_NOTIFIER_PORT",
            ORDERTAG_NOTIFIER_ROUTING_FILE=str(routing),
        )
    )


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def run(
    rates: tuple[int, ...] = (50, 200, 1000),
    seconds: float = 10.0,
    alerting_shares: dict[int, float] | None = None,
) -> dict[str, Any]:
    """Each rate in ``rates`` with every order urgent (each raises one alert: the worst case);
    then each rate in ``alerting_shares`` again with only that share of its orders urgent, the
    rest plain (a shop's usual stream: what the store and the notifier spend per order falls
    with the share of orders that alert)."""
    settings = isolated_settings("e2e")
    await ensure_topics(settings)
    page: dict[str, float] = {}
    hook: dict[str, float] = {}
    results: dict[str, Any] = {"rates": {}}
    async with AsyncExitStack() as stack:
        _, tagger = await stack.enter_async_context(
            service("tagger", settings, "ORDERTAG_TAGGER_PORT")
        )
        notifier_url, notifier = await notifier_to_webhook(stack, settings, hook)
        ingest_url, ingest = await stack.enter_async_context(
            service("ingest", settings, "ORDERTAG_INGEST_PORT", **UNLIMITED)
        )
        ready = asyncio.Event()
        follower = asyncio.create_task(follow_page(notifier_url, page, ready))
        await asyncio.wait_for(ready.wait(), 20)
        session = await stack.enter_async_context(
            aiohttp.ClientSession(
                ingest_url,
                headers={**HEADERS, "content-type": "application/json"},
                connector=aiohttp.TCPConnector(limit=256),
            )
        )
        pids = {
            **stack_pids(),
            "ingest": ingest.pid,
            "tagger": tagger.pid,
            "notifier": notifier.pid,
        }
        # a rate past what the machine sustains leaves a queue behind it (its run ends at the
        # drain's deadline): the shop's-share rows run before the all-urgent rows of their rate
        runs = sorted(
            [("rates", rate, 1.0) for rate in rates]
            + [("with_a_shops_share", r, s) for r, s in (alerting_shares or {}).items()],
            key=lambda run: (run[1], run[2]),
        )
        results["with_a_shops_share"] = {}
        for kind, rate, share in runs:
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            # the batch rates run six times as long (60 s at scale 1): a steady state, not a burst
            span = seconds * 6 if rate >= BATCH_FROM_RATE else seconds
            row = await _at_rate(session, rate, span, page, hook, share)
            # CPU of each process per order while this rate ran (µs): which one binds
            used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            row["cpu_us_per_order"] = {
                name: round(seconds / row["orders"] * 1e6) for name, seconds in used.items()
            }
            # past saturation most offered orders are still queued when the run ends: the CPU
            # per order that went all the way (its alert on the page) is what each one costs
            seen = row["page"]["seen"]
            row["cpu_us_per_alerted_order"] = {
                name: round(seconds / seen * 1e6) if seen else None
                for name, seconds in used.items()
            }
            results[kind][str(rate)] = row
        await cancel_and_wait([follower])
        results["peak_memory_mb"] = {
            "ingest": peak_memory_mb(ingest.pid),
            "tagger": peak_memory_mb(tagger.pid),
            "notifier": peak_memory_mb(notifier.pid),
        }
    mongo = make_mongo_client(settings)
    try:  # a run leaves tens of thousands of orders and alerts: not kept
        await mongo.drop_database(settings.mongo_database)
    finally:
        await mongo.close()
    return results


async def _at_rate(
    session: aiohttp.ClientSession,
    rate: int,
    seconds: float,
    page: dict[str, float],
    hook: dict[str, float],
    alerting_share: float = 1.0,
) -> dict[str, Any]:
    """``alerting_share`` of the orders urgent (evenly spread), the others shipped standard:
    latency is measured over the urgent ones, each of which raises one alert."""
    payloads = order_payloads(int(rate * seconds), run_prefix())
    every = round(1 / alerting_share)
    for index, payload in enumerate(payloads):
        payload["shipping"]["method"] = "same_day" if index % every == 0 else "standard"
    bodies = [(p["order_no"], json.dumps(p).encode()) for p in payloads]
    alerting = {p["order_no"] for p in payloads if p["shipping"]["method"] == "same_day"}
    sent: dict[str, float] = {}
    accepted = 0
    refused: dict[int, int] = {}  # batches answered otherwise, by status
    refusal: dict[str, str] = {}
    start = time.perf_counter()

    async def post(index: int, order_no: str, body: bytes) -> None:
        nonlocal accepted
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        sent[order_no] = time.perf_counter()
        async with session.post("/orders", data=body) as answer:
            accepted += answer.status == 202

    async def post_batch(index: int, batch: list[dict[str, Any]]) -> None:
        nonlocal accepted
        await asyncio.sleep(max(0.0, start + index * BATCH_EVERY_S - time.perf_counter()))
        now = time.perf_counter()
        sent.update((p["order_no"], now) for p in batch)
        async with session.post("/orders/batch", data=json.dumps({"orders": batch})) as answer:
            text = await answer.text()
            if answer.status != 200:  # a 503 still answers each order's outcome
                refused[answer.status] = refused.get(answer.status, 0) + 1
                refusal.setdefault("first", text[:300])
            with contextlib.suppress(ValueError, KeyError, TypeError):
                accepted += int(json.loads(text)["accepted"])

    if rate >= BATCH_FROM_RATE:
        size = max(int(rate * BATCH_EVERY_S), 1)
        batches = [payloads[i : i + size] for i in range(0, len(payloads), size)]
        await asyncio.gather(*(post_batch(i, batch) for i, batch in enumerate(batches)))
    else:
        await asyncio.gather(*(post(i, no, body) for i, (no, body) in enumerate(bodies)))
    send_seconds = time.perf_counter() - start
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline and not all(no in page and no in hook for no in alerting):  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # polling the arrivals the two listeners record
    page_ms = [(page[n] - sent[n]) * 1000 for n in alerting if n in page and n in sent]
    hook_ms = [(hook[n] - sent[n]) * 1000 for n in alerting if n in hook and n in sent]

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(values, 0.50), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
        }

    return {
        "orders": len(bodies),
        "alerting_share": alerting_share,
        "alerting_orders": len(alerting),
        "path": "POST /orders/batch" if rate >= BATCH_FROM_RATE else "POST /orders",
        "accepted": accepted,
        "batches_refused": {str(code): n for code, n in refused.items()},
        "first_refusal": refusal.get("first"),
        "achieved_rate": round(len(bodies) / send_seconds, 1),
        "page": {**summary(page_ms), "seen": len(page_ms)},
        "webhook": {**summary(hook_ms), "seen": len(hook_ms)},
    }

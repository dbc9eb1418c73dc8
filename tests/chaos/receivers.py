"""Webhook receivers standing in for the support desk's tools: they count, at the receiving end,
every alert each channel delivered (what staff would see), and refuse a few requests with 500
as real endpoints now and then do (a refused request is not a delivery). Like any endpoint that
honours the webhook contract, a request whose Idempotency-Key was already accepted is answered
200 and not shown again: the notifier repeats a send, with its key, when it was killed or timed
out before it stored the outcome. A second delivery under a new key is still counted."""

import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from bench.harness import free_port
from services.notifier.channels import IDEMPOTENCY_HEADER


@dataclass
class Receiver:
    channel: str
    url: str
    failure_rate: float
    rng: random.Random
    delivered: Counter[str] = field(default_factory=Counter)  # alert id -> deliveries
    requests: int = 0
    refused: int = 0
    repeats: int = 0  # requests whose Idempotency-Key was accepted before
    keys: set[str] = field(default_factory=set)
    last_delivery_at: float = 0.0  # time.monotonic()


@asynccontextmanager
async def receiver(
    channel: str, port: int, failure_rate: float, seed: int
) -> AsyncIterator[Receiver]:
    port = port or free_port()
    found = Receiver(
        channel, f"http://127.0.0.1:{port}/{channel}", failure_rate, random.Random(seed)
    )

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        found.requests += 1
        if found.rng.random() < found.failure_rate:
            found.refused += 1
            return web.Response(status=500, text="try again")
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and key in found.keys:
            found.repeats += 1
            return web.json_response({"ok": True})
        if key is not None:
            found.keys.add(key)
        for alert in json.loads(body)["alerts"]:
            found.delivered[alert["alert_id"]] += 1
        found.last_delivery_at = time.monotonic()
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield found
    finally:
        await runner.cleanup()

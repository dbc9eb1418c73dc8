"""``ordertag simulate``: stream realistic orders through the ingest API (or straight to Kafka)."""

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from services.ingest.publishing import OrderEventPublisher
from services.ingest.settings import IngestSettings
from services.simulator.ingest_client import IngestClient, Tally
from services.simulator.stream import OrderStream
from shared.auth import LOCAL_DEV_KEY
from shared.events import OrderCreated, StatusChanged
from shared.kafka import ensure_topics, make_producer
from shared.models import Order, OrderStatus
from shared.settings import Settings

console = Console(stderr=True)
TICK_S = 0.2
BATCH_SIZE = 500


def simulate(
    rate: Annotated[float, typer.Option(min=0.1, max=50_000, help="orders a second")] = 5.0,
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many orders")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="stop after seconds")] = None,
    seed: Annotated[int, typer.Option(help="same seed, same stream")] = 42,
    customers: Annotated[int, typer.Option(min=1, max=1_000_000)] = 20_000,
    direct: Annotated[bool, typer.Option(help="publish to Kafka, bypassing ingest")] = False,
    ingest_url: Annotated[
        str | None,
        typer.Option(envvar="ORDERTAG_INGEST_URL", help="default: this machine's ingest port"),
    ] = None,
    api_key: Annotated[str, typer.Option(envvar="ORDERTAG_API_KEY")] = LOCAL_DEV_KEY,
    prefix: str = "SIM",
    retry_for: Annotated[
        float, typer.Option(min=0, help="seconds to keep retrying an outage before giving up")
    ] = 120.0,
    report: Annotated[Path | None, typer.Option(help="write the counts as JSON here")] = None,
    history: Annotated[
        int, typer.Option(min=0, help="past orders of the customer base, sent first at full speed")
    ] = 0,
    follow_up_scale: Annotated[
        float, typer.Option(min=0.001, help="stretch (>1) or compress (<1) status-change delays")
    ] = 1.0,
) -> None:
    """Generate a realistic order stream (Chinese and English customers, long-tailed spend,
    urgent notes, cancellations, returns, status changes, fraud-like bursts)."""
    if count is None and duration is None:
        count = 1000
    stream = OrderStream(
        seed,
        customers,
        datetime.now(UTC),
        mean_gap_s=1 / rate,
        prefix=prefix,
        history=history,
        follow_up_scale=follow_up_scale,
    )
    url = ingest_url or f"http://127.0.0.1:{IngestSettings().ingest_port}"
    sender = _DirectSender(Settings()) if direct else _IngestSender(url, api_key, retry_for)
    tally = asyncio.run(_run(stream, sender, rate, count, duration))
    if report is not None:
        report.write_text(json.dumps(tally.as_json()), encoding="utf-8")
    if tally.failed:
        raise typer.Exit(3)


async def _run(
    stream: OrderStream, sender: "_Sender", rate: float, count: int | None, duration: float | None
) -> Tally:
    started = time.perf_counter()
    sent_orders = sent_status = 0
    tally = sender.tally
    columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    await sender.start()
    try:
        past = stream.history_orders()
        for start in range(0, len(past), 500):  # the customer base's past, before the live stream
            await sender.send(past[start : start + 500], [])
        if past:
            console.print(f"sent {len(past)} past orders ({tally.rejected} rejected)")
            started = time.perf_counter()  # the live stream's rate counts from here
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("starting")
            while True:
                elapsed = time.perf_counter() - started
                if duration is not None and elapsed >= duration:
                    break
                if count is not None and sent_orders >= count:
                    break
                due = int((elapsed + TICK_S) * rate) - sent_orders
                if count is not None:
                    due = min(due, count - sent_orders)
                orders: list[dict[str, Any]] = []
                changes: list[dict[str, Any]] = []
                while len(orders) < due:
                    action = next(stream)
                    (orders if action["type"] == "order" else changes).append(action)
                await sender.send([a["order"] for a in orders], changes)
                sent_orders += len(orders)
                sent_status += len(changes)
                live = sent_orders / max(time.perf_counter() - started, 1e-6)
                progress.update(
                    task,
                    description=(
                        f"{sent_orders} orders, {sent_status} status changes, "
                        f"{tally.rejected} rejected, {tally.retried} retried, "
                        f"{tally.failed} failed, {live:.1f} orders/s"
                    ),
                )
                await asyncio.sleep(max(0.0, started + elapsed + TICK_S - time.perf_counter()))
    finally:
        await sender.stop()
    console.print(
        f"sent {sent_orders} orders and {sent_status} status changes in "
        f"{time.perf_counter() - started:.1f} s: {tally.accepted} accepted, "
        f"{tally.duplicates} duplicates, {tally.rejected} rejected, "
        f"{tally.retried} requests retried, {tally.failed} failed after retries"
    )
    return tally


class _Sender:
    def __init__(self) -> None:
        self.tally = Tally()

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, orders: list[dict[str, Any]], changes: list[dict[str, Any]]) -> None:
        raise NotImplementedError


class _IngestSender(_Sender):
    def __init__(self, url: str, api_key: str, retry_for_s: float) -> None:
        self._client = IngestClient(url, api_key, retry_for_s)
        self.tally = self._client.tally

    async def stop(self) -> None:
        await self._client.aclose()

    async def send(self, orders: list[dict[str, Any]], changes: list[dict[str, Any]]) -> None:
        # after an outage the catch-up can exceed ingest's batch cap: never send more a request
        for start in range(0, len(orders), BATCH_SIZE):
            await self._client.send_orders(orders[start : start + BATCH_SIZE])
        for change in changes:
            await self._client.send_status(change)


class _DirectSender(_Sender):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._producer = make_producer(settings)
        self._publisher = OrderEventPublisher(self._producer, settings.topics.orders, 30)

    async def start(self) -> None:
        await ensure_topics(self._settings)
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, orders: list[dict[str, Any]], changes: list[dict[str, Any]]) -> None:
        events: list[OrderCreated | StatusChanged] = [
            OrderCreated(order=Order.model_validate(o)) for o in orders
        ]
        events += [
            StatusChanged(
                order_no=c["order_no"],
                customer_id=c["customer_id"],
                status=OrderStatus(c["status"]),
            )
            for c in changes
        ]
        errors = await self._publisher.publish_many(list(events))
        self.tally.failed += sum(error is not None for error in errors)
        self.tally.accepted += sum(error is None for error in errors)

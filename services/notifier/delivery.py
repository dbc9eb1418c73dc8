"""Delivering alerts to channels: one worker per channel, so a slow or failing channel never
holds up another; per-channel rate limits turn bursts into digests; retries back off with
jitter; quiet hours hold back what is not critical."""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from services.notifier.channels import AnyChannel, ChannelSender, DeliveryError, Message
from services.notifier.store import AlertStore
from shared.events import Alert, Severity

log = structlog.get_logger("notifier.delivery")
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]
MAX_DIGEST = 20  # alerts per message: WeCom markdown stops at 4,096 bytes


class ChannelWorker:
    def __init__(
        self,
        channel: AnyChannel,
        sender: ChannelSender,
        store: AlertStore,
        notify: Notify,
        *,
        attempts: int,
        base_delay_s: float,
    ) -> None:
        self.channel = channel
        self._sender = sender
        self._store = store
        self._notify = notify
        self._attempts = attempts
        self._base_delay_s = base_delay_s
        self._queue: asyncio.Queue[tuple[Alert, bool]] = asyncio.Queue()
        self._interval_s = 60 / channel.rate_per_minute
        self._next_send = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, alert: Alert, escalation: bool = False) -> None:
        self._queue.put_nowait((alert, escalation))

    async def run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._wait_for_slot()
            batch = [first]
            # what queued up meanwhile goes out as one digest, of a size chat robots accept
            while not self._queue.empty() and len(batch) < MAX_DIGEST:
                batch.append(self._queue.get_nowait())
            for message in self._messages(batch):
                self._spawn(self._deliver(message))

    def _messages(self, batch: list[tuple[Alert, bool]]) -> list[Message]:
        quiet = self.channel.quiet_hours
        now = datetime.now(UTC)
        ready: dict[bool, list[Alert]] = {False: [], True: []}
        for alert, escalation in batch:
            if quiet and quiet.contains(now) and alert.severity is not Severity.CRITICAL:
                delay = (quiet.ends_after(now) - now).total_seconds()
                self._spawn(self._later(delay, alert, escalation))
                continue
            ready[escalation].append(alert)
        return [
            Message(tuple(alerts), escalation) for escalation, alerts in ready.items() if alerts
        ]

    async def _later(self, delay_s: float, alert: Alert, escalation: bool) -> None:
        await asyncio.sleep(delay_s)
        self.enqueue(alert, escalation)

    async def _wait_for_slot(self) -> None:
        now = time.monotonic()
        if self._next_send > now:
            await asyncio.sleep(self._next_send - now)
        self._next_send = max(now, self._next_send) + self._interval_s

    async def _deliver(self, message: Message) -> None:
        ids = [alert.alert_id for alert in message.alerts]
        for attempt in range(1, self._attempts + 1):
            started = time.perf_counter()
            try:
                await self._sender.send(self.channel, message)
            except DeliveryError as error:
                final = attempt == self._attempts
                self._store.record_attempt(
                    ids, self.channel.id, False, time.perf_counter() - started, str(error), final
                )
                log.warning(
                    "delivery_failed",
                    channel=self.channel.id,
                    alert_ids=ids,
                    attempt=attempt,
                    final=final,
                    error=str(error),
                )
                if final:
                    for alert_id in ids:
                        await self._notify(
                            "delivery_failed", {"alert_id": alert_id, "channel": self.channel.id}
                        )
                    return
                # exponential backoff with full jitter, without holding the channel's queue
                jitter = random.uniform(0.5, 1.5)  # noqa: S311  (spreading retries, not secrets)
                await asyncio.sleep(self._base_delay_s * 2 ** (attempt - 1) * jitter)
                await self._wait_for_slot()
                continue
            self._store.record_attempt(
                ids, self.channel.id, True, time.perf_counter() - started, None, False
            )
            log.info(
                "delivered",
                channel=self.channel.id,
                alert_ids=ids,
                digest=len(ids) > 1,
                escalation=message.escalation,
            )
            return

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()


class Dispatcher:
    """All channel workers of the routing file."""

    def __init__(self, workers: dict[str, ChannelWorker]) -> None:
        self.workers = workers
        self._runs: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._runs = [asyncio.create_task(worker.run()) for worker in self.workers.values()]

    def enqueue(self, alert: Alert, channels: list[str], escalation: bool = False) -> None:
        for channel in channels:
            self.workers[channel].enqueue(alert, escalation)

    async def stop(self) -> None:
        for run in self._runs:
            run.cancel()
        for worker in self.workers.values():
            await worker.stop()

"""Delivering alerts to channels, each alert to each channel once, across restarts and crashes.

One worker per channel, so a slow or failing channel never holds up another; per-channel rate
limits turn bursts into digests; retries back off with jitter; quiet hours hold back what is not
critical. A delivery is *claimed* in MongoDB (pending → sending, with an attempt id and the
idempotency key it will carry) before anything is sent, and its outcome is stored before the
worker lets go of it. While a process holds claims it renews their lease (the heartbeat,
``Dispatcher.renew_leases_every``), so a slow send is never taken over and the sweeper settles a
dead process's claims one short lease after its last renewal (see ``Dispatcher.sweep`` and
docs/notifier.md).
"""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.notifier.attempt_log import AttemptLog
from services.notifier.channels import ChannelSender, DeliveryError, Message
from services.notifier.metrics import (
    DELIVERIES,
    DELIVERY_LATENCY,
    PENDING_DELIVERIES,
    SEND_DURATION,
)
from services.notifier.retrying import backoff_s, through_outages
from services.notifier.routing import AnyChannel
from services.notifier.store import AlertStore, DeliveryStatus, InterruptedClaim
from shared.events import Alert, Severity
from shared.tasks import cancel_and_wait
from shared.tracing import DeliverySpans, tracing_enabled

log = structlog.get_logger("notifier.delivery")
Notify = Callable[[str, dict[str, Any]], Awaitable[None]]
RELEASE_TIMEOUT_S = 2.0


def alert_of(document: dict[str, Any]) -> Alert:
    return Alert.model_validate({k: document[k] for k in Alert.model_fields})


class ChannelWorker:
    def __init__(
        self,
        channel: AnyChannel,
        sender: ChannelSender,
        store: AlertStore,
        attempt_log: AttemptLog,
        notify: Notify,
        *,
        attempts: int,
        base_delay_s: float,
        max_delay_s: float,
    ) -> None:
        self.channel = channel
        self._sender = sender
        self._store = store
        self._attempt_log = attempt_log
        self._notify = notify
        self._attempts = attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._queue: asyncio.Queue[tuple[Alert, bool]] = asyncio.Queue()
        self._interval_s = 60 / channel.rate_per_minute
        self._next_send = 0.0
        self._held: set[tuple[str, bool]] = set()  # queued, held for quiet hours or in flight
        self._latest: dict[str, Alert] = {}  # the newest state of each held alert
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()
        self._in_flight = asyncio.Semaphore(channel.max_in_flight)
        self._claims: dict[str, list[str]] = {}  # attempt id -> alert ids, claimed and unsettled
        self._pending = PENDING_DELIVERIES.labels(channel.id)

    def enqueue(self, alert: Alert, escalation: bool = False) -> None:
        """Queue a delivery unless this worker already holds it (the sweeper finds it again);
        a held alert's newer state replaces the older one, so the newest is what goes out."""
        known = self._latest.get(alert.alert_id)
        if known is None or known.revision <= alert.revision:
            self._latest[alert.alert_id] = alert
        if (alert.alert_id, escalation) in self._held:
            return
        self._held.add((alert.alert_id, escalation))
        self._pending.inc()
        self._queue.put_nowait((alert, escalation))

    async def run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._wait_for_slot()
            batch = [first]
            # what queued up meanwhile goes out as one digest, of a size chat robots accept
            while not self._queue.empty() and len(batch) < self.channel.max_digest:
                batch.append(self._queue.get_nowait())
            for message in self._messages(batch):
                self._spawn(self._deliver(message))

    def resend(self, claim: InterruptedClaim) -> None:
        """Send an interrupted claim again, as it was: same alerts, same idempotency key."""
        alerts = tuple(alert_of(document) for document in claim.alerts)
        for alert in alerts:
            self._held.add((alert.alert_id, claim.escalation))
            self._pending.inc()
        message = Message(alerts, claim.escalation, claim.idempotency_key)
        self._spawn(self._resend(message, claim.attempt_id))

    async def _resend(self, message: Message, interrupted: str) -> None:
        await self._wait_for_slot()
        await self._deliver(message, taking_over=interrupted)

    def _messages(self, batch: list[tuple[Alert, bool]]) -> list[Message]:
        quiet = self.channel.quiet_hours
        now = datetime.now(UTC)
        ready: dict[bool, list[Alert]] = {False: [], True: []}
        for alert, escalation in batch:
            if quiet and quiet.contains(now) and alert.severity is not Severity.CRITICAL:
                delay = (quiet.ends_after(now) - now).total_seconds()
                self._spawn(self._later(delay, alert, escalation), waiting=True)
                continue
            ready[escalation].append(alert)
        return [
            Message(tuple(alerts), escalation) for escalation, alerts in ready.items() if alerts
        ]

    async def _later(self, delay_s: float, alert: Alert, escalation: bool) -> None:
        await asyncio.sleep(delay_s)
        self._release([alert], escalation)
        self.enqueue(alert, escalation)

    async def _wait_for_slot(self) -> None:
        now = time.monotonic()
        if self._next_send > now:
            await asyncio.sleep(self._next_send - now)
        self._next_send = max(now, self._next_send) + self._interval_s

    async def _deliver(self, message: Message, taking_over: str | None = None) -> None:
        try:
            # claimed only when a send can start: what waits here stays pending, which a
            # crash leaves certain (never sent) rather than uncertain
            async with self._in_flight:
                await self._claim_and_send(message, taking_over)
        finally:
            self._release(list(message.alerts), message.escalation)

    async def _claim_and_send(self, message: Message, taking_over: str | None) -> None:
        attempt_id = uuid.uuid4().hex
        message = Message(
            tuple(self._latest.get(a.alert_id, a) for a in message.alerts),
            message.escalation,
            message.key,
        )
        ids = [alert.alert_id for alert in message.alerts]
        key = message.idempotency_key if taking_over is None else message.key
        assert key is not None  # an interrupted claim carries the key it was claimed with
        # an alert that resolved before this channel heard of it is not sent at all: nobody
        # needs a raise and a resolve at once (an escalation goes out whatever the status)
        skipping = not message.escalation
        claimed = await through_outages(
            lambda: self._store.claim_deliveries(
                ids,
                self.channel.id,
                attempt_id,
                key,
                taking_over=taking_over,
                unless_resolved_untold=skipping,
            ),
            "claim_delivery",
        )
        if skipping and len(claimed) < len(ids):
            await self._skip_resolved_untold([i for i in ids if i not in claimed], taking_over)
        if not claimed:  # delivered, skipped, or claimed by another process meanwhile
            return
        self._claims[attempt_id] = claimed  # the heartbeat renews its lease from now on
        try:
            await self._send_claimed(message, claimed, attempt_id, key)
        finally:
            # dropped without an await: a heartbeat never renews a claim nobody works on
            del self._claims[attempt_id]

    async def _skip_resolved_untold(self, ids: list[str], taking_over: str | None) -> None:
        skipped = await through_outages(
            lambda: self._store.skip_resolved_untold(ids, self.channel.id, taking_over=taking_over),
            "store_delivery_outcome",
        )
        if skipped:
            DELIVERIES.labels(self.channel.id, "skipped").inc(skipped)

    async def _send_claimed(
        self, message: Message, claimed: list[str], attempt_id: str, key: str
    ) -> None:
        held = set(claimed)
        alerts = tuple(alert for alert in message.alerts if alert.alert_id in held)
        message = Message(alerts, message.escalation, key)
        traces = (
            await through_outages(lambda: self._store.traces_of(claimed), "read_alert_traces")
            if tracing_enabled()
            else {}
        )
        spans = DeliverySpans(
            self.channel.id,
            self.channel.type,
            [(a.alert_id, a.order_no, traces.get(a.alert_id, {})) for a in alerts],
            escalation=message.escalation,
            attempt_id=attempt_id,
        )
        sending = False
        try:
            for attempt in range(1, self._attempts + 1):
                started = time.perf_counter()
                sending = True
                try:
                    await self._sender.send(self.channel, message)
                except DeliveryError as error:
                    sending = False
                    spans.attempt_failed(attempt, str(error))
                    if error.maybe_delivered and not self.channel.resends_interrupted:
                        await self._uncertain(claimed, attempt_id, attempt, started, error)
                        spans.end("uncertain", str(error))
                        return
                    if await self._failed(message, claimed, attempt_id, attempt, started, error):
                        spans.end("failed", str(error))
                        return
                    continue
                sending = False
                await self._succeeded(message, claimed, attempt_id, attempt, started)
                spans.end("delivered")
                return
        except asyncio.CancelledError:
            if not sending:  # nothing on the wire: hand the delivery back, untouched
                await asyncio.wait_for(
                    asyncio.shield(
                        self._store.settle(
                            claimed,
                            self.channel.id,
                            attempt_id,
                            DeliveryStatus.PENDING,
                            attempted=False,
                        )
                    ),
                    RELEASE_TIMEOUT_S,
                )
            raise
        finally:
            spans.end("interrupted")  # a stop mid-send (nothing once an outcome ended them)

    def _record_attempt(
        self,
        ids: list[str],
        attempt_id: str,
        attempt: int,
        started: float,
        error: DeliveryError | None,
    ) -> None:
        """One send's time and outcome: the latency histogram and the attempt log."""
        elapsed = time.perf_counter() - started
        SEND_DURATION.labels(self.channel.id).observe(elapsed)
        self._attempt_log.record(
            attempt_id,
            attempt,
            ids,
            self.channel.id,
            error is None,
            elapsed,
            None if error is None else str(error),
        )

    async def _succeeded(
        self, message: Message, ids: list[str], attempt_id: str, attempt: int, started: float
    ) -> None:
        self._record_attempt(ids, attempt_id, attempt, started, None)
        await through_outages(
            lambda: self._store.settle(ids, self.channel.id, attempt_id, DeliveryStatus.DELIVERED),
            "store_delivery_outcome",
        )
        DELIVERIES.labels(self.channel.id, "delivered").inc(len(ids))
        now = datetime.now(UTC)
        for alert in message.alerts:
            DELIVERY_LATENCY.labels(self.channel.id).observe(
                max(0.0, (now - alert.created_at).total_seconds())
            )
        log.info(
            "delivered",
            channel=self.channel.id,
            alert_ids=ids,
            digest=len(ids) > 1,
            escalation=message.escalation,
            attempt_id=attempt_id,
        )

    async def _uncertain(
        self, ids: list[str], attempt_id: str, attempt: int, started: float, error: DeliveryError
    ) -> None:
        """The request went out and no answer came, on a channel without an idempotency key
        (chat robots, e-mail): settled ``uncertain`` and not sent again, as an interrupted
        claim is (at most once: staff never see an alert twice; the page still shows it)."""
        self._record_attempt(ids, attempt_id, attempt, started, error)
        await through_outages(
            lambda: self._store.settle(
                ids,
                self.channel.id,
                attempt_id,
                DeliveryStatus.UNCERTAIN,
                f"no answer, not resent (the channel has no idempotency key): {error}",
            ),
            "store_delivery_outcome",
        )
        DELIVERIES.labels(self.channel.id, "uncertain").inc(len(ids))
        log.warning("delivery_uncertain", channel=self.channel.id, alert_ids=ids, error=str(error))

    async def _failed(
        self,
        message: Message,
        ids: list[str],
        attempt_id: str,
        attempt: int,
        started: float,
        error: DeliveryError,
    ) -> bool:
        """Record a failed attempt; True when it was the last one."""
        self._record_attempt(ids, attempt_id, attempt, started, error)
        final = attempt == self._attempts
        log.warning(
            "delivery_failed",
            channel=self.channel.id,
            alert_ids=ids,
            attempt=attempt,
            final=final,
            error=str(error),
        )
        if final:
            await through_outages(
                lambda: self._store.settle(
                    ids, self.channel.id, attempt_id, DeliveryStatus.FAILED, str(error)
                ),
                "store_delivery_outcome",
            )
            DELIVERIES.labels(self.channel.id, "failed").inc(len(ids))
            for alert_id in ids:
                await self._notify(
                    "delivery_failed", {"alert_id": alert_id, "channel": self.channel.id}
                )
            return True
        DELIVERIES.labels(self.channel.id, "retried").inc(len(ids))
        await through_outages(
            lambda: self._store.record_failed_attempt(ids, self.channel.id, attempt_id, str(error)),
            "store_delivery_attempt",
        )
        # exponential backoff with jitter, without holding the channel's queue (the heartbeat
        # keeps the claim meanwhile)
        await asyncio.sleep(backoff_s(attempt, self._base_delay_s, self._max_delay_s))
        await self._wait_for_slot()
        return False

    def holds(self, attempt_id: str) -> bool:
        """This worker still works on the claim (a late renewal never makes it look dead)."""
        return attempt_id in self._claims

    async def renew_claims(self) -> int:
        """One heartbeat: push the lease of every claim this worker holds forward, in one write."""
        if not self._claims:
            return 0
        held = dict(self._claims)
        ids = sorted({alert_id for alert_ids in held.values() for alert_id in alert_ids})
        return await self._store.renew_claims(ids, self.channel.id, list(held))

    def _release(self, alerts: list[Alert], escalation: bool) -> None:
        for alert in alerts:
            if (alert.alert_id, escalation) in self._held:
                self._held.discard((alert.alert_id, escalation))
                self._pending.dec()
            if (alert.alert_id, not escalation) not in self._held:
                self._latest.pop(alert.alert_id, None)

    def _spawn(self, work: Awaitable[None], *, waiting: bool = False) -> None:
        """Run ``work`` beside the queue; ``waiting`` work (held for quiet hours, nothing
        claimed) is cancelled at once on stop instead of being waited for."""
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        tasks = self._waiting if waiting else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def stop(self, grace_s: float) -> None:
        """Let sends in flight finish and store their outcomes (up to ``grace_s``); what waits
        (rate limit, quiet hours, backoff) is cancelled and stays pending in the store."""
        for task in self._waiting:
            task.cancel()
        in_flight = [t for t in self._tasks if not t.done()]
        if in_flight:
            _, late = await asyncio.wait(in_flight, timeout=grace_s)
            await cancel_and_wait(late)


class Dispatcher:
    """All channel workers of the routing file, and the sweeper that finds deliveries no process
    holds: pending ones after a restart, claims interrupted mid-send."""

    def __init__(
        self,
        workers: dict[str, ChannelWorker],
        store: AlertStore,
        lease_s: float,
        renew_s: float | None = None,
    ) -> None:
        self.workers = workers
        self._store = store
        self._lease_s = lease_s
        self._renew_s = lease_s / 3 if renew_s is None else renew_s
        self._runs: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._runs = [asyncio.create_task(worker.run()) for worker in self.workers.values()]
        self._heartbeat = asyncio.create_task(self.renew_leases_every(self._renew_s))

    async def renew_leases_every(self, seconds: float) -> None:
        """The claim heartbeat: while a worker holds claims (a send, its retries, storing its
        outcome), their lease is renewed every ``seconds``, so only a claim whose process died
        or hung runs out of lease, however slow the channel."""
        while True:
            await asyncio.sleep(seconds)
            for worker in self.workers.values():
                try:
                    await worker.renew_claims()
                except Exception as error:  # a store outage: the next beat tries again
                    log.warning(
                        "claim_renewal_failed", channel=worker.channel.id, error=repr(error)[:200]
                    )

    def enqueue(self, alert: Alert, channels: list[str], escalation: bool = False) -> None:
        for channel in channels:
            self.workers[channel].enqueue(alert, escalation)

    def enqueue_pending(self, document: dict[str, Any], alert: Alert | None = None) -> None:
        """Queue the deliveries of this stored alert that nobody claimed, telling ``alert`` (its
        state now) or the document's (a worker already holding one ignores it; the claim
        decides who sends)."""
        if not any(d["status"] == DeliveryStatus.PENDING.value for d in document["deliveries"]):
            return
        alert = alert or alert_of(document)
        for delivery in document["deliveries"]:
            worker = self.workers.get(delivery["channel"])
            if worker and delivery["status"] == DeliveryStatus.PENDING.value:
                worker.enqueue(alert, bool(delivery.get("escalation", False)))

    async def sweep(self, *, at_start: bool = False) -> None:
        """Queue pending deliveries (at start: all; later: those older than the lease, which no
        live process seems to hold), and settle claims whose lease ran out: a channel with an
        idempotency key gets the same message again under the same key; one without is marked
        ``uncertain`` and not resent (at most once: staff never see an alert twice; the page and
        escalation still show it)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._lease_s)
        for document in await self._store.pending_deliveries(None if at_start else cutoff):
            self.enqueue_pending(document)
        for claim in await self._store.interrupted_claims(cutoff):
            worker = self.workers.get(claim.channel)
            if worker is not None and worker.holds(claim.attempt_id):
                continue  # ours and alive: a renewal was late (a store outage), not a death
            await self._settle_interrupted(claim)
        follow_ups = await self._store.follow_ups()
        if follow_ups:
            documents = {
                d["alert_id"]: d
                for d in await self._store.get_many(sorted({a for a, _, _ in follow_ups}))
            }
            for alert_id, channel, _ in follow_ups:
                worker = self.workers.get(channel)
                if worker and alert_id in documents:
                    worker.enqueue(alert_of(documents[alert_id]))

    async def _settle_interrupted(self, claim: InterruptedClaim) -> None:
        worker = self.workers.get(claim.channel)
        ids = [document["alert_id"] for document in claim.alerts]
        if worker is None:
            log.warning(
                "interrupted_claim_of_unknown_channel", channel=claim.channel, alert_ids=ids
            )
            return
        if worker.channel.resends_interrupted and claim.idempotency_key:
            log.warning(
                "interrupted_delivery_resent",
                channel=claim.channel,
                alert_ids=ids,
                idempotency_key=claim.idempotency_key,
            )
            DELIVERIES.labels(claim.channel, "resent").inc(len(ids))
            worker.resend(claim)
            return
        await self._store.settle(
            ids,
            claim.channel,
            claim.attempt_id,
            DeliveryStatus.UNCERTAIN,
            "interrupted mid-send; not resent (the channel has no idempotency key)",
            attempted=False,
        )
        DELIVERIES.labels(claim.channel, "uncertain").inc(len(ids))
        log.warning("interrupted_delivery_uncertain", channel=claim.channel, alert_ids=ids)

    async def sweep_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.sweep()
            except Exception as error:  # a store outage: the next sweep tries again
                log.warning("delivery_sweep_failed", error=repr(error)[:200])

    async def stop(self, grace_s: float) -> None:
        await cancel_and_wait(self._runs)
        await asyncio.gather(*(worker.stop(grace_s) for worker in self.workers.values()))
        # last: sends finishing within the grace keep their claims until their outcome is stored
        if self._heartbeat is not None:
            await cancel_and_wait([self._heartbeat])

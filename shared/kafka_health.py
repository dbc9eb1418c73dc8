"""Keeping aiokafka's clients working through broker restarts, where aiokafka itself does not.

Two failures were seen in the chaos run, both silent: the process stays up, logs nothing, and
never consumes again.

- A consumer's fetcher task dies on an unexpected error (a transport closed under it while the
  broker restarts); the consumer then only re-raises that error. The subscribers are restarted.
- A client's metadata task (``AIOKafkaClient._md_synchronizer``) ends on an unexpected error.
  Every later metadata refresh then waits for a future nothing will resolve: the consumer's
  coordinator waits there for ever (no heartbeats, no rejoin), and the batch in hand waits on it
  in its commit (aiokafka issues #703 and #712). A new metadata task is started in its place; it
  resolves the refresh everybody waits on, and the client goes on as if nothing happened.

Both tasks died of uvloop's ``RuntimeError`` on a write to a closed transport (aiokafka
handles ``OSError``); the services now run on the standard event loop (``shared/serve.py``),
and these repairs stay for whatever else ends a task the same way. aiokafka exposes neither
task, hence the private attributes, each read defensively: on a version without them the checks
find nothing to repair.

A third failure stops an idempotent producer's sends to a partition for good (aiokafka issue
#1017, seen when a 110 s Kafka restart left ingest answering 503 until it was restarted). A
batch waiting for a partition that has no leader (a broker still loading its logs) is failed
once it is older than ``request_timeout_ms``, but it has already taken its sequence numbers:
the broker refuses each later batch of that partition as out of order, and aiokafka has no way
back. aiokafka itself retries an idempotent batch in flight until it is delivered, so a waiting
one now does the same (``guard_idempotent_producers``); the caller's own timeout still answers
its client (ingest: 503 with Retry-After), and a consumer's handler waits for the leader as it
waits for a broker that is down. A producer that stops waits no longer than aiokafka let it
(its request timeout), so a shutdown during the outage ends as it did. Should a partition's
sequence break anyway (a batch refused for good after it took its numbers, or a producer
unknown to the broker), or a sender task end, the process says so on ``/healthz``
(``broken_producer``), so its orchestrator replaces it.
"""

import asyncio
import math
import weakref
from functools import partial
from typing import Any, cast

import structlog
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId
from aiokafka.producer.message_accumulator import MessageAccumulator
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge

log = structlog.get_logger("kafka")

CHECK_EVERY_S = 5.0
KAFKA_CLIENT_REPAIRS = Counter(
    "ordertag_kafka_client_repairs_total",
    "aiokafka background tasks found dead and replaced: a consumer's fetcher (the subscribers "
    "restarted) or a client's metadata task (a new one started).",
    ["task"],
)

KAFKA_PRODUCER_BROKEN = Gauge(
    "ordertag_kafka_producer_broken",
    "1 while an idempotent Kafka producer of this process can no longer send everything (a "
    "partition's sequence broke, or its sender task ended); /healthz fails. 0 otherwise.",
)
KAFKA_PRODUCER_BROKEN.set_function(lambda: float(broken_producer() is not None))

_clients: "weakref.WeakSet[AIOKafkaClient]" = weakref.WeakSet()
_idempotent_accumulators: "weakref.WeakSet[MessageAccumulator]" = weakref.WeakSet()
# A batch refused for one of these leaves its partition's sequence out of step with the broker's
# (aiokafka gives an idempotent producer's ``InvalidProducerEpoch`` as ``ProducerFenced``)
BROKEN_SEQUENCE = (OutOfOrderSequenceNumber, UnknownProducerId, ProducerFenced)
_cancelled_seen: "weakref.WeakSet[asyncio.Task[Any]]" = weakref.WeakSet()


def track_kafka_clients() -> None:
    """Remember every aiokafka client this process makes from now on (producers, consumers and
    admin clients, FastStream's included), so their metadata tasks can be checked, and guard
    its idempotent producers (``guard_idempotent_producers``). Idempotent."""
    guard_idempotent_producers()
    if getattr(AIOKafkaClient.__init__, "_ordertag_tracked", False):
        return
    original = AIOKafkaClient.__init__

    def tracked_init(self: AIOKafkaClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _clients.add(self)

    tracked_init._ordertag_tracked = True  # type: ignore[attr-defined]
    AIOKafkaClient.__init__ = tracked_init


def guard_idempotent_producers() -> None:
    """Idempotent producers made from now on keep a batch that waits for a partition's leader
    until it is delivered (see the module's docstring), and remember a batch refused in a way
    that breaks its partition's sequence (``broken_producer``). Idempotent."""
    if getattr(MessageAccumulator.__init__, "_ordertag_patched", False):
        return
    original_init = MessageAccumulator.__init__
    original_append = MessageAccumulator._append_batch
    original_close = MessageAccumulator.close

    def patched_init(self: MessageAccumulator, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if getattr(self, "_txn_manager", None) is not None and hasattr(self, "_batch_ttl"):
            self._ordertag_request_ttl = self._batch_ttl
            self._batch_ttl = math.inf
            _idempotent_accumulators.add(self)

    async def patched_close(self: MessageAccumulator) -> None:
        """A producer that stops waits for a leader no longer than aiokafka lets it (its
        request timeout), as before: its sequences no longer matter, and what it did not
        deliver is a send that failed (not acknowledged, so sent again or redelivered)."""
        ttl = getattr(self, "_ordertag_request_ttl", None)
        if ttl is not None:
            self._batch_ttl = ttl
            for batch in [b for queued in self._batches.values() for b in queued]:
                batch._ttl = ttl
        await original_close(self)

    def patched_append(self: MessageAccumulator, *args: Any, **kwargs: Any) -> Any:
        batch = original_append(self, *args, **kwargs)
        if self in _idempotent_accumulators:
            batch.future.add_done_callback(partial(_note_broken_sequence, weakref.ref(self)))
        return batch

    patched_init._ordertag_patched = True  # type: ignore[attr-defined]
    MessageAccumulator.__init__ = patched_init
    MessageAccumulator._append_batch = patched_append
    MessageAccumulator.close = patched_close


def _note_broken_sequence(
    accumulator: "weakref.ref[MessageAccumulator]", delivered: asyncio.Future[Any]
) -> None:
    if delivered.cancelled():
        return
    error = delivered.exception()
    owner = accumulator()
    if (
        isinstance(error, BROKEN_SEQUENCE)
        and owner is not None
        and getattr(owner, "_ordertag_broken_sequence", None) is None  # the first: the cause
    ):
        owner._ordertag_broken_sequence = error


def broken_producer() -> BaseException | None:
    """Why an idempotent producer of this process can no longer send everything, if one cannot:
    a partition's sequence broke, or its sender task ended (aiokafka then fails every send).
    Only a new process recovers; ``/healthz`` says so. A stopped producer is not counted."""
    for accumulator in list(_idempotent_accumulators):
        if getattr(accumulator, "_closed", False):
            continue  # its producer was stopped: nothing sends through it any more
        broken_sequence = getattr(accumulator, "_ordertag_broken_sequence", None)
        sender_ended = getattr(accumulator, "_exception", None)  # set by ``fail_all``
        if broken_sequence is not None or sender_ended is not None:
            return cast(BaseException, broken_sequence or sender_ended)
    return None


def revive_metadata_task(client: AIOKafkaClient) -> BaseException | None:
    """Start a new metadata task when the client's one ended; returns what ended it.

    ``close()`` cancels the task and forgets it as soon as it has stopped, so a cancelled task
    is left alone the first time it is seen; one still there at the next check was cancelled
    by something else (a ``CancelledError`` leaking out of a connection) and is replaced. The
    new task is woken at once, so the refresh the old one left pending is done and resolved
    now rather than at the next periodic refresh (5 minutes by default)."""
    task = getattr(client, "_sync_task", None)
    if not isinstance(task, asyncio.Task) or not task.done():
        return None
    if task.cancelled():
        if task not in _cancelled_seen:
            _cancelled_seen.add(task)
            return None
        error: BaseException | None = asyncio.CancelledError("the metadata task was cancelled")
    else:
        error = task.exception()
    if error is None:  # the loop never returns; nothing to repair if it somehow did
        return None
    waiter = client._md_update_waiter
    if not waiter.done():
        waiter.set_result(None)
    client._sync_task = asyncio.create_task(client._md_synchronizer())
    KAFKA_CLIENT_REPAIRS.labels("metadata").inc()
    log.warning("kafka_metadata_task_revived", error=repr(error), exc_info=error)
    return error


def tracked_clients() -> list[AIOKafkaClient]:
    """The clients made since ``track_kafka_clients`` that are still alive."""
    return list(_clients)


def revive_metadata_tasks() -> int:
    """Repair every tracked client; how many needed it."""
    return sum(revive_metadata_task(client) is not None for client in list(_clients))


def dead_fetcher(broker: KafkaBroker) -> BaseException | None:
    """The error that ended a subscriber's background fetch, if one did."""
    for subscriber in broker.subscribers:
        fetcher = getattr(getattr(subscriber, "consumer", None), "_fetcher", None)
        task = getattr(fetcher, "error_future", None)
        if isinstance(task, asyncio.Future) and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                return error
    return None


async def keep_kafka_clients_working(
    broker: KafkaBroker | None = None, every_s: float = CHECK_EVERY_S
) -> None:
    """Every ``every_s``: revive dead metadata tasks, log a producer broken for good (once), and
    restart the broker's subscribers when a fetcher died (the batch in hand was not committed:
    it is redelivered)."""
    reported: BaseException | None = None
    while True:
        await asyncio.sleep(every_s)
        revive_metadata_tasks()
        broken = broken_producer()
        if broken is not None and broken is not reported:
            reported = broken
            log.error("kafka_producer_broken", error=repr(broken), health="/healthz fails")
        error = dead_fetcher(broker) if broker is not None else None
        if error is None:
            continue
        KAFKA_CLIENT_REPAIRS.labels("fetcher").inc()
        log.warning("kafka_consumer_restarted", reason=repr(error))
        for subscriber in broker.subscribers:  # type: ignore[union-attr]
            await subscriber.stop()
            await subscriber.start()

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

A third failure stops an idempotent producer for good (aiokafka issue #1017). A batch waiting
for a partition that has no leader (a broker still loading its logs after a restart) is failed
once it is older than ``request_timeout_ms``, but it has already taken its sequence numbers; the
broker then refuses the partition's next batch as out of order, and that error ends the
producer's sender task. Every later send fails at once: ingest answered 503 for good after a
110 s Kafka restart. aiokafka itself retries an idempotent batch in flight until it is
delivered, so a waiting one now does the same (``keep_idempotent_batches_until_delivered``);
the caller's own timeout still answers its client. Should a sender task end anyway, the process
says so on ``/healthz`` (``stopped_producer``), so its orchestrator replaces it.
"""

import asyncio
import math
import weakref
from typing import Any

import structlog
from aiokafka.client import AIOKafkaClient
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.producer.sender import Sender
from faststream.kafka import KafkaBroker
from prometheus_client import Counter

log = structlog.get_logger("kafka")

CHECK_EVERY_S = 5.0
KAFKA_CLIENT_REPAIRS = Counter(
    "ordertag_kafka_client_repairs_total",
    "aiokafka background tasks found dead and replaced: a consumer's fetcher (the subscribers "
    "restarted) or a client's metadata task (a new one started).",
    ["task"],
)

_clients: "weakref.WeakSet[AIOKafkaClient]" = weakref.WeakSet()
_senders: "weakref.WeakSet[Sender]" = weakref.WeakSet()
_cancelled_seen: "weakref.WeakSet[asyncio.Task[Any]]" = weakref.WeakSet()


def track_kafka_clients() -> None:
    """Remember every aiokafka client and producer sender this process makes from now on
    (producers, consumers and admin clients, FastStream's included), so their background tasks
    can be checked, and keep idempotent batches until delivered. Idempotent."""
    keep_idempotent_batches_until_delivered()
    _remember_instances(AIOKafkaClient, _clients)
    _remember_instances(Sender, _senders)


def _remember_instances(cls: type, instances: "weakref.WeakSet[Any]") -> None:
    """Add every ``cls`` made from now on to ``instances``. Idempotent."""
    if getattr(cls.__init__, "_ordertag_tracked", False):  # type: ignore[misc]
        return
    original = cls.__init__  # type: ignore[misc]

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        instances.add(self)

    tracked_init._ordertag_tracked = True  # type: ignore[attr-defined]
    cls.__init__ = tracked_init  # type: ignore[misc]


def keep_idempotent_batches_until_delivered() -> None:
    """Idempotent producers made from now on never expire a batch that waits for a partition's
    leader (see the module's docstring): its sequence numbers stay in order. Idempotent."""
    if getattr(MessageAccumulator.__init__, "_ordertag_patched", False):
        return
    original = MessageAccumulator.__init__

    def patched_init(self: MessageAccumulator, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if getattr(self, "_txn_manager", None) is not None and hasattr(self, "_batch_ttl"):
            self._batch_ttl = math.inf

    patched_init._ordertag_patched = True  # type: ignore[attr-defined]
    MessageAccumulator.__init__ = patched_init


def stopped_producer() -> BaseException | None:
    """The error that ended a tracked producer's sender task, if one did: such a producer fails
    every send from then on, and only a new process recovers (``/healthz`` says so)."""
    for sender in list(_senders):
        if getattr(getattr(sender, "_message_accumulator", None), "_closed", False):
            continue  # its producer was stopped: nothing sends through it any more
        task = getattr(sender, "sender_task", None)
        if isinstance(task, asyncio.Task) and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                return error
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
    """Every ``every_s``: revive dead metadata tasks, and restart the broker's subscribers when
    a fetcher died (the batch in hand was not committed: it is redelivered)."""
    reported: BaseException | None = None
    while True:
        await asyncio.sleep(every_s)
        revive_metadata_tasks()
        stopped = stopped_producer()
        if stopped is not None and stopped is not reported:
            reported = stopped
            log.error("kafka_producer_stopped", error=repr(stopped), health="/healthz fails")
        error = dead_fetcher(broker) if broker is not None else None
        if error is None:
            continue
        KAFKA_CLIENT_REPAIRS.labels("fetcher").inc()
        log.warning("kafka_consumer_restarted", reason=repr(error))
        for subscriber in broker.subscribers:  # type: ignore[union-attr]
            await subscriber.stop()
            await subscriber.start()

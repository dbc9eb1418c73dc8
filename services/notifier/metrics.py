"""The notifier's own Prometheus series (``ordertag_notifier_*``): what an on-call engineer asks
of an alerting service — were alerts raised, did they reach their channels, how fast, how many
wait."""

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

ALERTS_RAISED = Counter(
    "ordertag_notifier_alerts_raised_total",
    "Alerts raised (stored for the first time), by kind and severity.",
    ["kind", "severity"],
)
DELIVERIES = Counter(
    "ordertag_notifier_deliveries_total",
    "Deliveries of alerts to channels by outcome: delivered, failed (retries exhausted), retried "
    "(one failed attempt), resent (interrupted claim sent again under its idempotency key), "
    "uncertain (interrupted claim on a channel without one, not sent again).",
    ["channel", "outcome"],
)
SEND_DURATION = Histogram(
    "ordertag_notifier_send_duration_seconds",
    "Time of one delivery attempt (the channel's answer), by channel.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DELIVERY_LATENCY = Histogram(
    "ordertag_notifier_delivery_latency_seconds",
    "From an alert's creation to its delivery on a channel.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
PENDING_DELIVERIES = Gauge(
    "ordertag_notifier_pending_deliveries",
    "Alert deliveries queued or in flight in this process, by channel.",
    ["channel"],
)
DEPENDENCY_RETRIES = Counter(
    "ordertag_notifier_dependency_retries_total",
    "Operations retried because a dependency was down, by dependency.",
    ["dependency"],
)
LIVE_UPDATE_FAILURES = Counter(
    "ordertag_notifier_live_update_failures_total",
    "Live page updates not published (Redis down); the change itself was stored.",
)
ATTEMPT_LOG_BUFFERED = Gauge(
    "ordertag_notifier_attempt_log_buffered",
    "Delivery attempts waiting to be written to the attempt log.",
)
CONSUMER_LAG = Gauge(
    "ordertag_notifier_lag",
    "Tagged-order records behind the partition end, by partition (as ordertag_tagger_lag).",
    ["partition"],
)
STORE_COMMANDS = Counter(
    "ordertag_notifier_store_commands_total",
    "Commands this process sent to MongoDB, by command (insert, update, find...).",
    ["command"],
)
STORE_DOCUMENTS = Counter(
    "ordertag_notifier_store_documents_total",
    "Documents those commands touched, by command: inserted, matched by an update, returned by "
    "a read (what the store works on per alert, beside the round trips).",
    ["command"],
)


class StoreCommands(CommandListener):
    """Counts the notifier's MongoDB commands and the documents they touched (one counter
    increment per reply; the store's own figures per alert are read off these)."""

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        STORE_COMMANDS.labels(event.command_name).inc()
        STORE_DOCUMENTS.labels(event.command_name).inc(_documents_of(event.reply))

    def failed(self, event: CommandFailedEvent) -> None:
        STORE_COMMANDS.labels(event.command_name).inc()


def _documents_of(reply: Mapping[str, Any]) -> int:
    cursor = reply.get("cursor")
    if isinstance(cursor, Mapping):
        batch = cursor.get("firstBatch", cursor.get("nextBatch", ()))
        return len(batch)
    if "value" in reply:  # findAndModify
        return int(reply["value"] is not None)
    n = reply.get("n", 0)
    return n if isinstance(n, int) else 0

"""Prometheus series every service shares: HTTP requests by route and status, the time an order
takes from ingest to each later stage, and consumer lag per partition.

The ingest time travels with the order in a Kafka header (``ORIGIN_HEADER``, milliseconds since
the epoch): ingest's records carry it as their own timestamp, the tagger copies it onto the tagged
event, so the notifier measures from ingest too, not from the tagger's send.
"""

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ORIGIN_HEADER = "ordertag-ingested-ms"

HTTP_REQUESTS = Counter(
    "ordertag_http_requests_total",
    "HTTP requests answered, by method, route template (not the path) and status.",
    ["method", "route", "status"],
)
END_TO_END_SECONDS = Histogram(
    "ordertag_end_to_end_seconds",
    "From ingest's send of an order event to a later stage: tagged (tags stored and the tagged "
    "event acknowledged), alerted (the notifier stored its alerts for it).",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
UNMATCHED_ROUTE = "unmatched"  # 404s: the path is the client's choice, never a label


class RequestMetrics:
    """Count every HTTP answer under the route template that served it (``/orders/{order_no}``),
    so the label set stays bounded whatever paths clients send. Pure ASGI: it only reads the
    status of the response it passes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app_root = scope.get("root_path", "")
        status = 500  # an exception that escaped every handler is answered 500 by the server

        async def recorded_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recorded_send)
        finally:
            HTTP_REQUESTS.labels(
                scope["method"], route_template(scope, app_root), str(status)
            ).inc()


def route_template(scope: Scope, app_root: str = "") -> str:
    """The template of the route that matched (routers set ``scope["route"]``), behind the
    prefixes of the mounts it is under (they grow ``root_path``)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    mounted_under = scope.get("root_path", "")[len(app_root) :]
    return f"{mounted_under}{path}" or "/"


class KafkaRecord(Protocol):
    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: Sequence[tuple[str, bytes]]


def origin_ms(record: KafkaRecord) -> int:
    """When ingest sent the order this record carries: its origin header, or (on ingest's own
    records) the record's timestamp."""
    for key, value in record.headers or ():
        if key == ORIGIN_HEADER:
            try:
                return int(value)
            except ValueError:
                break
    return int(record.timestamp)


def origin_header(record: KafkaRecord) -> tuple[str, bytes]:
    return (ORIGIN_HEADER, str(origin_ms(record)).encode())


def observe_end_to_end(stage: str, records: Iterable[KafkaRecord]) -> None:
    now_ms = time.time() * 1000
    histogram = END_TO_END_SECONDS.labels(stage)
    for record in records:
        histogram.observe(max(now_ms - origin_ms(record), 0) / 1000)


def observe_lag(gauge: Gauge, consumer: Any, records: Sequence[KafkaRecord]) -> None:
    """Records behind the end of each partition this batch came from (best effort: the
    consumer's last known high watermark, so never a broker round trip)."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    for (topic, partition), offset in last.items():
        with contextlib.suppress(Exception):  # an observation: never fail a batch over it
            highwater = consumer.highwater(TopicPartition(topic, partition))
            if highwater is None:
                continue
            gauge.labels(str(partition)).set(max(highwater - offset - 1, 0))

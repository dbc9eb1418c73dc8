"""OpenTelemetry traces across the services: one order's trace goes ingest -> tagger -> notifier.

Off unless ``ORDERTAG_TRACING_ENABLED=true``; then spans go over OTLP/HTTP to
``ORDERTAG_TRACING_ENDPOINT`` (a collector, Jaeger, Tempo...). What is traced:

- HTTP requests (FastAPI), MongoDB commands (PyMongo) and Redis calls (redis-py);
- each order event as it crosses Kafka: ingest opens a producer span per event and puts its
  context in the record's headers (W3C ``traceparent``); the tagger and the notifier open a
  consumer span per record, child of that context, and hand their own on in the headers of what
  they publish. A consumed batch is one span of its own (FastStream's middleware) linked to every
  record's trace, with the batch's MongoDB and Redis work under it: a batch mixes many orders, so
  it cannot belong to one order's trace;
- each alert's delivery to a channel: the notifier stores the W3C context of the order's record
  span with the alert (``order_trace``) and the send, however much later and in whichever
  process (the sweeper's, after a restart), is a span in that trace (``DeliverySpans``).

When tracing is off, nothing here is built and the headers carry no context.
"""

import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any, Literal

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shared.metrics import KafkaRecord
from shared.settings import Settings

Headers = list[tuple[str, bytes]]
# Probes and scrapes every few seconds would bury the traces worth reading.
UNTRACED_URLS = "healthz,readyz,metrics"


_provider: TracerProvider | None = None
_handled: ContextVar["RecordSpans | None"] = ContextVar("ordertag_handled_batch", default=None)


def start_tracing(service: str, settings: Settings) -> TracerProvider | None:
    """Export this process's spans as ``ordertag-<service>`` when tracing is enabled (once per
    process: the provider is global). The SDK flushes what is buffered at exit."""
    global _provider
    if not settings.tracing_enabled:
        return None
    if _provider is not None:
        return _provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"ordertag-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)),
    )
    endpoint = f"{settings.tracing_endpoint.rstrip('/')}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    PymongoInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return provider


def tracing_enabled() -> bool:
    return _provider is not None


def instrument_app(app: FastAPI, service: str, settings: Settings) -> None:
    """Trace the app's requests when tracing is enabled (a server span per request)."""
    provider = start_tracing(service, settings)
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=UNTRACED_URLS)


def broker_middlewares() -> tuple[Any, ...]:
    """FastStream's telemetry middleware for a broker, when tracing is enabled: a span per
    consumed batch linked to its records' traces, and context in what FastStream publishes."""
    if _provider is None:
        return ()
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

    return (KafkaTelemetryMiddleware(tracer_provider=_provider),)


def _tracer() -> trace.Tracer:
    return trace.get_tracer("ordertag", tracer_provider=_provider)


def with_context(headers: Sequence[tuple[str, bytes]], span: Span | None) -> Headers:
    """``headers`` plus the W3C trace context of ``span`` (nothing added without one)."""
    if span is None:
        return list(headers)
    return [*headers, *((key, value.encode()) for key, value in _carrier(span).items())]


def _carrier(span: Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def context_of(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    """The trace context a producer put in a record's headers (empty when none)."""
    carrier: Mapping[str, str] = {
        key: value.decode("latin-1") for key, value in headers or () if value is not None
    }
    return propagate.extract(carrier)


class PublishSpans:
    """A producer span per event published in one call, each event's headers carrying its own
    span's context. Inside a consumed batch (``with RecordSpans(...)``: the notifier's alerts)
    a span is the child of its order's record span, so it stays in that order's trace;
    elsewhere (ingest's HTTP request) the child of the current span."""

    def __init__(self, topic: str) -> None:
        self._topic = topic
        self._spans: list[Span] = []

    def headers(self, base: Sequence[tuple[str, bytes]], order_no: str) -> Headers:
        if _provider is None:
            return list(base)
        handled = _handled.get()
        record_span = handled.span_of(order_no) if handled is not None else None
        span = _tracer().start_span(
            f"send {self._topic}",
            context=None if record_span is None else trace.set_span_in_context(record_span),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": self._topic,
                "ordertag.order_no": order_no,
            },
        )
        self._spans.append(span)
        return with_context(base, span)

    def end(self, errors: Sequence[BaseException | None] = ()) -> None:
        for span, error in zip(self._spans, [*errors, *[None] * len(self._spans)], strict=False):
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, repr(error)[:200]))
            span.end()
        self._spans.clear()


class RecordSpans:
    """A consumer span per record of a consumed batch, each the child of the context its
    producer put in the record's headers, so every order's trace goes on through this service.
    They all start when the batch does and end when its effects are stored and published."""

    def __init__(self, topic: str, records: Iterable[tuple[str, KafkaRecord]]) -> None:
        self._spans: dict[str, Span] = {}
        if _provider is None:
            return
        started = time.time_ns()
        tracer = _tracer()
        for order_no, record in records:
            self._spans[order_no] = tracer.start_span(
                f"process {topic}",
                context=context_of(record.headers),
                kind=SpanKind.CONSUMER,
                start_time=started,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(record.partition),
                    "messaging.kafka.offset": record.offset,
                    "ordertag.order_no": order_no,
                },
            )

    def span_of(self, order_no: str) -> Span | None:
        """The record span of ``order_no`` in this batch (None with tracing off)."""
        return self._spans.get(order_no)

    def headers(self, base: Sequence[tuple[str, bytes]], order_no: str) -> Headers:
        """Headers for an event published about ``order_no``, in that order's trace."""
        return with_context(base, self.span_of(order_no))

    def end(self, error: BaseException | None = None) -> None:
        for span in self._spans.values():
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, repr(error)[:200]))
            span.end()
        self._spans.clear()

    def __enter__(self) -> "RecordSpans":
        self._token: Token[RecordSpans | None] = _handled.set(self)
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        _handled.reset(self._token)
        self.end(error)


def order_trace(order_no: str) -> dict[str, str]:
    """The W3C context of ``order_no``'s record span in the batch being handled (inside
    ``with RecordSpans(...)``), to store with what the batch leaves for later; empty when there
    is none (tracing off, or no batch)."""
    spans = _handled.get()
    span = spans.span_of(order_no) if spans is not None else None
    return {} if span is None else _carrier(span)


class DeliverySpans:
    """A span per alert one channel message carries (a digest carries several), each the child
    of the context stored with its alert (``order_trace``): the send joins the trace of the
    order event that caused it, whenever and in whichever process it runs. A stored alert
    without one (stored with tracing off) gets a trace of its own."""

    def __init__(
        self,
        channel: str,
        channel_type: str,
        alerts: Iterable[tuple[str, str, Mapping[str, str]]],
        *,
        escalation: bool,
        attempt_id: str,
    ) -> None:
        """``alerts``: (alert id, order number, stored trace context) of each alert sent."""
        self._spans: list[Span] = []
        if _provider is None:
            return
        alerts = list(alerts)
        tracer = _tracer()
        for alert_id, order_no, stored in alerts:
            self._spans.append(
                tracer.start_span(
                    f"deliver {channel_type}",
                    context=propagate.extract(dict(stored)),
                    kind=SpanKind.CLIENT,
                    attributes={
                        "ordertag.order_no": order_no,
                        "ordertag.alert_id": alert_id,
                        "ordertag.channel": channel,
                        "ordertag.channel_type": channel_type,
                        "ordertag.escalation": escalation,
                        "ordertag.digest_size": len(alerts),
                        "ordertag.attempt_id": attempt_id,
                    },
                )
            )

    def attempt_failed(self, attempt: int, error: str) -> None:
        for span in self._spans:
            span.add_event("attempt failed", {"attempt": attempt, "error": error[:200]})

    def end(
        self,
        outcome: Literal["delivered", "failed", "uncertain", "interrupted"],
        error: str | None = None,
    ) -> None:
        """``interrupted``: the process stopped mid-send (the claim is settled later);
        ``uncertain``: sent without an answer, not resent (a channel without a key)."""
        for span in self._spans:
            span.set_attribute("ordertag.delivery.outcome", outcome)
            if outcome != "delivered":
                span.set_status(Status(StatusCode.ERROR, (error or outcome)[:200]))
            span.end()
        self._spans.clear()

"""An order's trace context crosses Kafka in the record headers: the consumer's span of a record
is the child of the producer's span that sent it, and what it publishes goes on in that trace."""

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.tagger.publishing import Lineage
from shared import tracing
from shared.events import OrderCreated
from shared.kafka import JSON_HEADERS
from shared.metrics import ORIGIN_HEADER, origin_ms
from shared.settings import Settings
from shared.tracing import PublishSpans, RecordSpans
from tests.factories import make_order


@dataclass
class Record:
    headers: list[tuple[str, bytes]]
    topic: str = "orders"
    partition: int = 3
    offset: int = 41
    timestamp: int = 1_700_000_000_000
    value: bytes = field(default=b"")


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_provider", provider)
    yield exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_a_consumed_record_continues_the_trace_of_its_producer(
    spans: InMemorySpanExporter,
) -> None:
    sent = PublishSpans("orders")
    headers = sent.headers(JSON_HEADERS, "SO-1")
    sent.end([None])

    with RecordSpans("orders", [("SO-1", Record(headers))]) as consumed:
        onward = consumed.headers(JSON_HEADERS, "SO-1")
    with RecordSpans("tagged", [("SO-1", Record(onward))]):
        pass

    producer = named(spans, "send orders")
    tagger = named(spans, "process orders")
    notifier = named(spans, "process tagged")
    assert producer.kind is SpanKind.PRODUCER
    assert tagger.kind is SpanKind.CONSUMER
    assert tagger.parent is not None
    assert tagger.parent.span_id == producer.context.span_id
    assert notifier.parent is not None
    assert notifier.parent.span_id == tagger.context.span_id
    assert len({producer.context.trace_id, tagger.context.trace_id, notifier.context.trace_id}) == 1
    assert tagger.attributes is not None
    assert tagger.attributes["ordertag.order_no"] == "SO-1"
    assert ("content-type", b"application/json") in headers


def test_each_event_of_a_batch_gets_its_own_trace(spans: InMemorySpanExporter) -> None:
    sent = PublishSpans("orders")
    first, second = sent.headers(JSON_HEADERS, "SO-1"), sent.headers(JSON_HEADERS, "SO-2")
    sent.end([None, TimeoutError("no ack")])

    with RecordSpans("orders", [("SO-1", Record(first)), ("SO-2", Record(second))]) as consumed:
        assert consumed.headers([], "SO-1") != consumed.headers([], "SO-2")

    producers = [s for s in spans.get_finished_spans() if s.name == "send orders"]
    assert len({s.context.trace_id for s in producers}) == 2
    assert [s.status.status_code for s in producers] == [StatusCode.UNSET, StatusCode.ERROR]


def test_a_failed_batch_marks_its_record_spans_as_errors(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ConnectionError), RecordSpans("orders", [("SO-1", Record([]))]):
        raise ConnectionError("mongodb down")

    consumed = named(spans, "process orders")
    assert consumed.status.status_code is StatusCode.ERROR
    assert consumed.parent is None  # no context in the headers: a trace of its own


def test_tracing_off_adds_nothing_to_the_headers() -> None:
    assert tracing._provider is None  # off unless ORDERTAG_TRACING_ENABLED
    sent = PublishSpans("orders")

    assert sent.headers(JSON_HEADERS, "SO-1") == JSON_HEADERS
    with RecordSpans("orders", [("SO-1", Record(JSON_HEADERS))]) as consumed:
        assert consumed.headers(JSON_HEADERS, "SO-1") == JSON_HEADERS
    assert tracing.broker_middlewares() == ()


def test_tracing_is_off_unless_enabled() -> None:
    assert tracing.start_tracing("test", Settings()) is None


def test_tagged_events_carry_ingest_time_and_the_order_trace(
    spans: InMemorySpanExporter,
) -> None:
    event = OrderCreated(order=make_order("SO-7"))
    sent = PublishSpans("orders")
    record = Record(sent.headers(JSON_HEADERS, "SO-7"), timestamp=1_700_000_123_456)
    sent.end()

    with Lineage("orders", [(event, record)]) as lineage:  # type: ignore[list-item]
        headers = lineage.headers("SO-7")
        unknown = lineage.headers("SO-8")

    assert (ORIGIN_HEADER, b"1700000123456") in headers
    assert origin_ms(Record(headers)) == 1_700_000_123_456
    assert any(key == "traceparent" for key, _ in headers)
    assert unknown == JSON_HEADERS

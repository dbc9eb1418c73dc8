"""An order's trace context crosses Kafka in the record headers: the consumer's span of a record
is the child of the producer's span that sent it, and what it publishes goes on in that trace;
the notifier stores it with the alert, and the alert's later delivery joins it."""

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.notifier import publishing as alert_publishing
from services.notifier.publishing import AlertPublisher
from services.tagger.publishing import Lineage
from shared import tracing
from shared.events import OrderCreated
from shared.kafka import JSON_HEADERS, OutgoingRecord
from shared.metrics import ORIGIN_HEADER, origin_ms
from shared.settings import Settings
from shared.tracing import DeliverySpans, PublishSpans, RecordSpans
from tests.conftest import eventually
from tests.factories import make_order
from tests.notifier_fakes import InMemoryAlertStore
from tests.unit.test_notifier_pure import alert, tagged
from tests.unit.test_notifier_use_cases import Process


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
    assert not tracing.tracing_enabled()  # off unless ORDERTAG_TRACING_ENABLED
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


def test_an_alert_delivery_joins_the_trace_stored_with_its_alert(
    spans: InMemorySpanExporter,
) -> None:
    sent = PublishSpans("tagged")
    headers = sent.headers(JSON_HEADERS, "SO-1")
    sent.end()
    with RecordSpans("tagged", [("SO-1", Record(headers))]):
        stored = tracing.order_trace("SO-1")  # kept with the alert
        assert tracing.order_trace("SO-2") == {}  # not in this batch
    assert tracing.order_trace("SO-1") == {}  # the batch is over

    # later, maybe in another process: the delivery, from the stored alert
    delivery = DeliverySpans(
        "hook", "webhook", [("SO-1:support", "SO-1", stored)], escalation=False, attempt_id="a1"
    )
    delivery.attempt_failed(1, "HTTP 500")
    delivery.end("delivered")

    consumed = named(spans, "process tagged")
    sending = named(spans, "deliver webhook")
    assert sending.kind is SpanKind.CLIENT
    assert sending.parent is not None
    assert sending.parent.span_id == consumed.context.span_id
    assert sending.context.trace_id == consumed.context.trace_id
    assert sending.status.status_code is StatusCode.UNSET
    assert sending.attributes is not None
    assert sending.attributes["ordertag.alert_id"] == "SO-1:support"
    assert sending.attributes["ordertag.delivery.outcome"] == "delivered"
    assert [e.name for e in sending.events] == ["attempt failed"]


def test_a_digest_delivery_is_a_span_in_each_alert_trace_and_a_failure_an_error(
    spans: InMemorySpanExporter,
) -> None:
    sent = PublishSpans("tagged")
    first, second = sent.headers(JSON_HEADERS, "SO-1"), sent.headers(JSON_HEADERS, "SO-2")
    sent.end()
    with RecordSpans("tagged", [("SO-1", Record(first)), ("SO-2", Record(second))]):
        stored = [(f"{n}:support", n, tracing.order_trace(n)) for n in ("SO-1", "SO-2")]

    delivery = DeliverySpans("robot", "wecom", stored, escalation=True, attempt_id="a2")
    delivery.end("failed", "HTTP 500")
    delivery.end("interrupted")  # ended once: a later end adds nothing

    sends = [s for s in spans.get_finished_spans() if s.name == "deliver wecom"]
    producers = [s for s in spans.get_finished_spans() if s.name == "send tagged"]
    assert {s.context.trace_id for s in sends} == {s.context.trace_id for s in producers}
    assert len(sends) == 2
    assert all(s.status.status_code is StatusCode.ERROR for s in sends)
    assert all(s.attributes and s.attributes["ordertag.digest_size"] == 2 for s in sends)


async def test_the_notifier_sends_an_alert_in_the_trace_of_the_event_that_raised_it(
    spans: InMemorySpanExporter,
) -> None:
    sent = PublishSpans("tagged")
    headers = sent.headers(JSON_HEADERS, "SO-9")
    sent.end()
    store = InMemoryAlertStore()
    async with Process(store) as process:
        with RecordSpans("tagged", [("SO-9", Record(headers))]):
            await process.alerting.handle([tagged(["urgent"])])

        async def both_sent() -> bool:
            return {"deliver webhook", "deliver wecom"} <= {
                s.name for s in spans.get_finished_spans()
            }

        await eventually(both_sent, within=5)

    consumed = named(spans, "process tagged")
    for name in ("deliver webhook", "deliver wecom"):
        sending = named(spans, name)
        assert sending.parent is not None
        assert sending.parent.span_id == consumed.context.span_id
        assert sending.attributes is not None
        assert sending.attributes["ordertag.order_no"] == "SO-9"


async def test_alerts_published_in_a_batch_stay_in_each_order_trace(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_headers: list[list[tuple[str, bytes]]] = []

    async def send_batched(
        _producer: object, _topic: str, records: Sequence[OutgoingRecord]
    ) -> list[asyncio.Future[None]]:
        sent_headers.extend(list(headers) for _, _, headers in records)
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return [acknowledged] * len(records)

    monkeypatch.setattr(alert_publishing, "send_batched", send_batched)
    first, second = alert(), alert().model_copy(update={"order_no": "SO-8", "alert_id": "SO-8:u"})
    produced = PublishSpans("tagged")
    records = [Record(produced.headers(JSON_HEADERS, n)) for n in ("SO-9", "SO-8")]
    produced.end()

    with RecordSpans("tagged", [("SO-9", records[0]), ("SO-8", records[1])]):
        await AlertPublisher(producer=None, topic="alerts")([first, second])

    def order_no(span: ReadableSpan) -> object:
        return (span.attributes or {})["ordertag.order_no"]

    finished = spans.get_finished_spans()
    consumed = {order_no(s): s for s in finished if s.name == "process tagged"}
    published = [s for s in finished if s.name == "send alerts"]
    assert [order_no(s) for s in published] == ["SO-9", "SO-8"]
    for span in published:
        order = consumed[order_no(span)]
        assert span.parent is not None
        assert span.parent.span_id == order.context.span_id
        assert span.context.trace_id == order.context.trace_id
    # each alert record carries its own producer span's context onward
    assert len({dict(h)["traceparent"] for h in sent_headers}) == 2

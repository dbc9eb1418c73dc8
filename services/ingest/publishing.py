"""Publishing order events to Kafka, acknowledged by the broker before anyone is told "accepted"."""

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from services.ingest import metrics
from shared.errors import DependencyUnavailable
from shared.events import OrderEventModel, order_event_key
from shared.kafka import JSON_HEADERS, send_batched
from shared.tracing import PublishSpans

PUBLISH_ERRORS = (KafkaError, TimeoutError, OSError)


class BrokerUnavailable(DependencyUnavailable):
    """Kafka did not acknowledge the event in time; the caller should retry later."""

    def __init__(self, message: str) -> None:
        super().__init__("kafka", message)


class OrderEventPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s

    async def publish(self, event: OrderEventModel) -> None:
        """Publish one event and wait for the broker's acknowledgement (acks=all)."""
        [error] = await self.publish_many([event])
        if error is not None:
            raise BrokerUnavailable(f"Kafka did not acknowledge the event: {error!r}") from error

    async def publish_many(
        self, events: Sequence[OrderEventModel], values: Sequence[bytes] | None = None
    ) -> list[BaseException | None]:
        """Send every event (one batch per partition), then await all acknowledgements
        together. ``values`` are the events' JSON when the caller made it already
        (``event_value``). Returns, per event, the error that kept it out or None."""
        started = time.perf_counter()
        futures: list[asyncio.Future[RecordMetadata]] = []
        spans = PublishSpans(self._topic)  # one per event, each event's context in its headers
        if values is None:
            values = [event_value(event) for event in events]
        try:
            async with asyncio.timeout(self._timeout_s):
                records = [
                    (order_event_key(event), value, spans.headers(JSON_HEADERS, event.order_no))
                    for event, value in zip(events, values, strict=True)
                ]
                futures = await send_batched(self._producer, self._topic, records)
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
            errors = [o if isinstance(o, BaseException) else None for o in outcomes]
        except PUBLISH_ERRORS as error:
            errors = [_error_of(f, error) for f in futures] + [error] * (len(events) - len(futures))
        spans.end(errors)
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        return errors


def event_value(event: OrderEventModel) -> bytes:
    """The event's record value: its JSON, as bytes straight from pydantic-core (what
    ``model_dump_json().encode()`` gives, without its Python-side call and the copy)."""
    return event.__pydantic_serializer__.to_json(event)


_ORDER_FIELD = b',"order":'


def order_json_in(value: bytes) -> bytes:
    """The order's own JSON inside an order event's value, byte for byte what
    ``order.model_dump_json()`` gives (the order is the event's last field, after an envelope
    of ids, times and literals), so the order's digest needs no second serialisation."""
    start = value.index(_ORDER_FIELD) + len(_ORDER_FIELD)
    return value[start:-1]


def _error_of(
    future: asyncio.Future[RecordMetadata], fallback: BaseException
) -> BaseException | None:
    if not future.done() or future.cancelled():
        return fallback
    return future.exception()

"""Publishing order events to Kafka, acknowledged by the broker before anyone is told "accepted"."""

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from services.ingest import metrics
from shared.errors import DependencyUnavailable
from shared.events import OrderCreated, OrderEventModel, customer_key, order_event_key, utc_now
from shared.kafka import JSON_HEADERS, send_batched
from shared.models import Order
from shared.tracing import PublishSpans

PUBLISH_ERRORS = (KafkaError, TimeoutError, OSError)


class BrokerUnavailable(DependencyUnavailable):
    """Kafka did not acknowledge the event in time; the caller should retry later."""

    def __init__(self, message: str) -> None:
        super().__init__("kafka", message)


# Not frozen: one is made per order on the batch path, and a frozen dataclass sets each field
# through ``object.__setattr__`` (0.67 µs for an ``OrderCreatedRecord`` against 0.17).
@dataclass(slots=True)
class EncodedEvent:
    """An order event as Kafka takes it: its key, its JSON, and its order number (for the
    producer span)."""

    key: bytes
    value: bytes
    order_no: str


def encoded(event: OrderEventModel) -> EncodedEvent:
    return EncodedEvent(order_event_key(event), event_value(event), event.order_no)


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

    async def publish_many(self, events: Sequence[OrderEventModel]) -> list[BaseException | None]:
        """Publish events; returns, per event, the error that kept it out or None."""
        return await self.publish_encoded([encoded(event) for event in events])

    async def publish_encoded(self, events: Sequence[EncodedEvent]) -> list[BaseException | None]:
        """Send every event (one batch per partition), then await all acknowledgements
        together. Returns, per event, the error that kept it out or None."""
        started = time.perf_counter()
        futures: list[asyncio.Future[RecordMetadata]] = []
        spans = PublishSpans(self._topic)  # one per event, each event's context in its headers
        try:
            async with asyncio.timeout(self._timeout_s):
                records = [
                    (event.key, event.value, spans.headers(JSON_HEADERS, event.order_no))
                    for event in events
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


# The order is an order event's last field, after an envelope of ids, times and literals.
_ORDER_FIELD = b',"order":'


@dataclass(slots=True)
class OrderCreatedRecord(EncodedEvent):
    """A new order's ``order.created`` event, ready to claim and publish."""

    event_id: str
    order_json: bytes  # the order's own JSON, inside ``value`` (its digest is the claim's)


def new_orders(orders: Sequence[Order]) -> list[OrderCreatedRecord]:
    """The ``order.created`` events of validated orders, each serialised once.

    The events of one batch share their ``occurred_at`` (the batch's arrival) and differ in
    their envelope only by ``event_id``: pydantic-core serialises the first event whole, and
    each other value is that envelope with its own id and its order's JSON (what serialising
    each event gives, byte for byte; ``event_value``). Serialising an envelope per event cost
    as much again as the order inside it; building an event object per order, a UUID object
    per id and its string form cost as much as the order's own JSON, so none is built."""
    if not orders:
        return []
    event_ids = new_event_ids(len(orders))
    first = OrderCreated(event_id=UUID(event_ids[0]), occurred_at=utc_now(), order=orders[0])
    head, _, after_id = event_value(first).partition(event_ids[0].encode())
    tail = after_id[: after_id.index(_ORDER_FIELD) + len(_ORDER_FIELD)]
    serialise = Order.__pydantic_serializer__.to_json
    made = []
    for event_id, order in zip(event_ids, orders, strict=True):
        order_json = serialise(order)
        value = b"".join((head, event_id.encode(), tail, order_json, b"}"))
        key = customer_key(order.customer.id)
        made.append(OrderCreatedRecord(key, value, order.order_no, event_id, order_json))
    return made


def new_event_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs in their string form, as ``str(uuid4())`` gives
    them, from one read of the system's randomness (a UUID object each cost more than the
    rest of its event's envelope)."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes(0x40 | (b & 0x0F) for b in raw[6::16])  # version 4
    raw[8::16] = bytes(0x80 | (b & 0x3F) for b in raw[8::16])  # the RFC 4122 variant
    hexed = raw.hex()
    return [
        f"{hexed[i : i + 8]}-{hexed[i + 8 : i + 12]}-{hexed[i + 12 : i + 16]}-"
        f"{hexed[i + 16 : i + 20]}-{hexed[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def _error_of(
    future: asyncio.Future[RecordMetadata], fallback: BaseException
) -> BaseException | None:
    if not future.done() or future.cancelled():
        return fallback
    return future.exception()

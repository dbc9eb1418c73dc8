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
from shared.events import EventType, OrderCreated, OrderEventModel, built, order_event_key, utc_now
from shared.kafka import JSON_HEADERS, send_batched
from shared.models import Order
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


# The order is an order event's last field, after an envelope of ids, times and literals.
_ORDER_FIELD = b',"order":'


@dataclass(frozen=True, slots=True)
class OrderCreatedRecord:
    """An accepted order's ``order.created`` event, ready to claim and publish."""

    event: OrderCreated
    event_id: str
    value: bytes  # the record value: the event's JSON
    order_json: bytes  # the order's own JSON, inside ``value`` (its digest is the claim's)


def new_orders(orders: Sequence[Order]) -> list[OrderCreatedRecord]:
    """The ``order.created`` events of validated orders, each serialised once.

    The events of one batch share their ``occurred_at`` (the batch's arrival) and differ in
    their envelope only by ``event_id``: pydantic-core serialises the first event whole, and
    each other value is that envelope with its own id and its order's JSON (what serialising
    each event gives, byte for byte; ``event_value``). Serialising an envelope per event cost
    as much again as the order inside it."""
    if not orders:
        return []
    occurred_at = utc_now()
    events = [
        built(
            OrderCreated,
            {
                "event_id": event_id,
                "occurred_at": occurred_at,
                "schema_version": 1,
                "event_type": EventType.ORDER_CREATED,
                "order": order,
            },
        )
        for event_id, order in zip(new_event_ids(len(orders)), orders, strict=True)
    ]
    first_id = str(events[0].event_id).encode()
    head, _, after_id = event_value(events[0]).partition(first_id)
    tail = after_id[: after_id.index(_ORDER_FIELD) + len(_ORDER_FIELD)]
    serialise = Order.__pydantic_serializer__.to_json
    made = []
    for event, order in zip(events, orders, strict=True):
        event_id, order_json = str(event.event_id), serialise(order)
        value = b"".join((head, event_id.encode(), tail, order_json, b"}"))
        made.append(OrderCreatedRecord(event, event_id, value, order_json))
    return made


def new_event_ids(count: int) -> list[UUID]:
    """``count`` random (version 4) UUIDs, as ``uuid4()`` makes them, from one read of the
    system's randomness instead of one each."""
    randomness = os.urandom(16 * count)
    return [UUID(bytes=randomness[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


def _error_of(
    future: asyncio.Future[RecordMetadata], fallback: BaseException
) -> BaseException | None:
    if not future.done() or future.cancelled():
        return fallback
    return future.exception()

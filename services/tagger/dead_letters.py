"""Turning Kafka records into order events, and the ones that cannot be into dead letters.

A record that does not decode will never decode: retrying it would stall its partition
forever, so it is parked on the dead-letter topic with enough headers to find and replay it.
"""

from dataclasses import dataclass
from typing import TypeAlias

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from services.tagger.tagging import Refusal
from shared.events import OrderCreated, OrderUpdated, StatusChanged, order_event_adapter

OrderEventModel = OrderCreated | OrderUpdated | StatusChanged
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    error: str

    def headers(self) -> dict[str, str]:
        return {
            "x-original-topic": self.record.topic,
            "x-original-partition": str(self.record.partition),
            "x-original-offset": str(self.record.offset),
            "x-error": self.error[:1000],
        }


def decode_records(
    records: tuple[Record, ...],
) -> tuple[list[tuple[OrderEventModel, Record]], list[DeadLetter]]:
    """Each record decoded to its event (kept beside its record), or a dead letter."""
    events: list[tuple[OrderEventModel, Record]] = []
    dead: list[DeadLetter] = []
    for record in records:
        try:
            events.append((order_event_adapter.validate_json(record.value or b""), record))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:5]
            )
            dead.append(DeadLetter(record, f"invalid order event: {problems}"))
    return events, dead


def unknown_order_letters(
    decoded: list[tuple[OrderEventModel, Record]], refused: list[Refusal]
) -> list[DeadLetter]:
    """Status changes refused (for an order the tagger never saw, or naming another customer
    than the order's): parked with the reason, not retried forever."""
    record_of = {event.event_id: record for event, record in decoded}
    return [DeadLetter(record_of[r.event.event_id], r.reason) for r in refused]

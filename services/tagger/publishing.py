"""What the tagger publishes: tagged-order events for the notifier, dead letters for people.

Through a bare aiokafka producer with the safe settings: per batch, every record is sent first
and the acknowledgements are awaited together (FastStream's per-message publish pipeline cost
more than the send itself at the tagger's batch sizes).
"""

import asyncio

from aiokafka import AIOKafkaProducer

from services.tagger.dead_letters import DeadLetter
from shared.events import OrderTagged
from shared.kafka import JSON_HEADERS


class TaggerOutput:
    def __init__(self, producer: AIOKafkaProducer, tagged_topic: str, dead_letter_topic: str):
        self._producer = producer
        self._tagged_topic = tagged_topic
        self._dead_letter_topic = dead_letter_topic

    async def publish(self, tagged: list[OrderTagged], dead: list[DeadLetter] = ()) -> None:  # type: ignore[assignment]
        """Send all, then wait for every acknowledgement; raises if any was refused, so the
        batch is not committed and comes again (consumers dedupe on the tagged event id)."""
        sends = [
            await self._producer.send(
                self._tagged_topic,
                event.model_dump_json().encode(),
                key=event.customer_id.encode(),
                headers=JSON_HEADERS,
            )
            for event in tagged
        ]
        sends += [
            await self._producer.send(
                self._dead_letter_topic,
                letter.record.value,
                key=letter.record.key,
                headers=[(k, v.encode()) for k, v in letter.headers().items()],
            )
            for letter in dead
        ]
        await asyncio.gather(*sends)

"""Publishing order events to Kafka, acknowledged by the broker before anyone is told "accepted"."""

import asyncio

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from shared.events import OrderCreated, OrderUpdated, StatusChanged, order_event_key

OrderEventModel = OrderCreated | OrderUpdated | StatusChanged


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge the event in time; the caller should retry later."""


class OrderEventPublisher:
    def __init__(self, broker: KafkaBroker, topic: str, timeout_s: float) -> None:
        self._broker = broker
        self._topic = topic
        self._timeout_s = timeout_s

    async def publish(self, event: OrderEventModel) -> None:
        """Publish one event and wait for the broker's acknowledgement (acks=all)."""
        await self.publish_many([event])

    async def publish_many(self, events: list[OrderEventModel]) -> None:
        """Send every event first, then await all acknowledgements together (one linger window)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = [
                    await self._broker.publish(
                        event, topic=self._topic, key=order_event_key(event), no_confirm=True
                    )
                    for event in events
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError, OSError) as error:
            raise BrokerUnavailable(f"Kafka did not acknowledge the events: {error!r}") from error

"""Each new alert, once, on the Kafka topic ``ordertag.alerts`` for other systems (keyed by
customer id so one customer's alerts stay ordered); MongoDB's ``alerts`` is the record."""

import asyncio

from faststream.kafka import KafkaBroker

from shared.events import Alert


class AlertPublisher:
    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self._topic = broker.publisher(topic, title="alerts", schema=Alert)

    async def __call__(self, alerts: list[Alert]) -> None:
        """Returns once Kafka acknowledged every alert (sent together, confirmed together)."""
        sends = [
            await self._topic.publish(alert, key=alert.customer_id.encode(), no_confirm=True)
            for alert in alerts
        ]
        await asyncio.gather(*sends)

"""Each new alert, once, on the Kafka topic ``ordertag.alerts`` for other systems (keyed by
customer id so one customer's alerts stay ordered); MongoDB's ``alerts`` is the record.

Through a bare aiokafka producer with the safe settings, as the tagger's tagged events: a
batch's alerts are sent as one batch per partition and acknowledged together (FastStream's
per-message publish pipeline cost more than the rest of publishing an alert)."""

import asyncio

from aiokafka import AIOKafkaProducer

from shared.events import Alert, customer_key
from shared.kafka import JSON_HEADERS, send_batched
from shared.tracing import PublishSpans

_ALERT_JSON = Alert.__pydantic_serializer__.to_json  # what ``model_dump_json`` gives, as bytes


class AlertPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def __call__(self, alerts: list[Alert]) -> None:
        """Returns once Kafka acknowledged every alert (sent together, confirmed together);
        raises the first refusal, so the batch's alerts stay unpublished and go again."""
        spans = PublishSpans(self._topic)  # a producer span per alert, its context in headers
        records = [
            (
                customer_key(alert.customer_id),
                _ALERT_JSON(alert),
                spans.headers(JSON_HEADERS, alert.order_no),
            )
            for alert in alerts
        ]
        try:
            sends = await send_batched(self._producer, self._topic, records)
        except BaseException as error:
            spans.end([error] * len(records))
            raise
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        errors = [o if isinstance(o, BaseException) else None for o in outcomes]
        spans.end(errors)
        refused = next((error for error in errors if error is not None), None)
        if refused is not None:
            raise refused

"""The Kafka subscriber: decode tagged-order events, hand them to the alerting use case, commit
only once its effects are stored."""

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from services.notifier import metrics
from services.notifier.alerting import Alerting
from services.notifier.retrying import through_outages
from services.notifier.settings import NotifierSettings
from shared.events import OrderTaggedAsRead
from shared.kafka import group_membership, left_undecoded
from shared.metrics import observe_end_to_end, observe_lag
from shared.tracing import RecordSpans

log = structlog.get_logger("notifier")
# Waiting out an outage inside one batch stays well below max_poll_interval_ms (300 s); past it
# the batch is not acknowledged, Kafka hands it back and the wait starts again.
OUTAGE_WAIT_S = 60.0


def subscribe_tagged_orders(
    broker: KafkaBroker, settings: NotifierSettings, alerting: Alerting
) -> None:
    membership = group_membership(settings)

    @broker.subscriber(
        settings.topics.tagged,
        group_id=settings.notifier_group_id,
        batch=True,
        max_records=500,
        batch_timeout_ms=50,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=left_undecoded,
        title="tagged orders",
        group_instance_id=membership.instance_id,  # static membership when set
        session_timeout_ms=membership.session_timeout_ms,
    )
    async def on_orders_tagged(message: KafkaMessage) -> None:
        events = []
        records = []
        for record in message.raw_message:
            try:
                events.append(OrderTaggedAsRead.model_validate_json(record.value or b""))
                records.append(record)
            except ValidationError as error:  # not ours to fix: skip, say so, go on
                log.error(
                    "undecodable_tagged_event",
                    offset=record.offset,
                    partition=record.partition,
                    error=str(error)[:300],
                )
        traced = [(event.order_no, record) for event, record in zip(events, records, strict=True)]
        with RecordSpans(settings.topics.tagged, traced):
            await through_outages(lambda: alerting.handle(events), "alert", within_s=OUTAGE_WAIT_S)
        observe_end_to_end("alerted", records)
        observe_lag(metrics.CONSUMER_LAG, message.consumer, message.raw_message)

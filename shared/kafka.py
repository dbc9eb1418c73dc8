"""The Kafka broker every service builds, with producer settings that do not lose events."""

import contextlib
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from shared.settings import Settings

# aiokafka defaults to acks=1 with idempotence off and no linger: a leader failover can lose an
# acknowledged event and a retry can duplicate one. A short linger batches concurrent sends.
SAFE_PRODUCER = {"acks": "all", "enable_idempotence": True, "linger_ms": 5}
JSON_HEADERS = [("content-type", b"application/json")]


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A bare aiokafka producer with the same safe settings, for ingest's hot path: FastStream's
    per-message publish pipeline costs more than the send itself when publishing batches."""
    return AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, **SAFE_PRODUCER)


def make_broker(settings: Settings, **kwargs: object) -> KafkaBroker:
    """A FastStream Kafka broker whose producer waits for all in-sync replicas."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # On shutdown, let a batch in flight finish and commit (deploys allow 30 s).
        graceful_timeout=15.0,
        **kwargs,  # type: ignore[arg-type]
    )


async def ensure_topics(settings: Settings) -> None:
    """Create the topics if missing (idempotent), so partition counts do not depend on the
    broker's auto-create defaults. Partitions bound how many consumers of a group can work.
    With replication factor 3 and min.insync.replicas 2, a write acknowledged with acks=all
    is on two brokers at least, and one broker down stops neither producers nor consumers."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        topics = settings.topics
        missing = [
            NewTopic(
                name,
                num_partitions=count,
                replication_factor=settings.kafka_replication_factor,
                topic_configs={"min.insync.replicas": str(settings.kafka_min_insync_replicas)},
            )
            for name, count in (
                (topics.orders, settings.kafka_partitions),
                (topics.tagged, settings.kafka_partitions),
                (topics.dead_letter, 1),
                (topics.alerts, settings.kafka_partitions),
            )
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another service was first
                await admin.create_topics(missing)
    finally:
        await admin.close()


def asyncapi_document(broker: KafkaBroker, title: str) -> Any:
    """The service's Kafka side as an AsyncAPI 3 document, generated from its code."""
    return AsyncAPI(broker, title=title, version="0.1.0").to_specification().to_jsonable()

"""The Kafka broker every service builds, with producer settings that do not lose events."""

import asyncio
import contextlib
import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from faststream.specification import AsyncAPI

from shared.kafka_health import track_kafka_clients
from shared.settings import Settings, Topics
from shared.tracing import Headers, broker_middlewares

log = structlog.get_logger("kafka")

# aiokafka defaults to acks=1 with idempotence off and no linger: a leader failover can lose an
# acknowledged event and a retry can duplicate one. A short linger batches concurrent sends.
# aiokafka keeps one request in flight per broker and one open batch per partition: at its
# 16 KiB default a produce request carries ~22 order events a partition, so a backlog of
# sends drains one round trip per ~135 orders (6 partitions) and the broker's CPU per order is
# 3-4x what it is with batches of 256 KiB (under the broker's 1 MiB message.max.bytes).
SAFE_PRODUCER = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
}
JSON_HEADERS = [("content-type", b"application/json")]
OutgoingRecord = tuple[bytes, bytes, Headers]  # key, value, headers
_MURMUR_M = 0x5BD1E995
_WORD = 0xFFFFFFFF


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition of ``partitions`` (sorted) that aiokafka's ``send()`` and the Java client
    choose for ``key``: murmur2, positive, modulo their count. aiokafka's own murmur2 reads the
    key a byte at a time and masks after every step (~2.4 µs a customer id, the most of any
    step of publishing an order); this one reads it a word at a time (~1.3 µs)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) of ``data``."""
    length = len(data)
    h = 0x9747B28C ^ length
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * _MURMUR_M) & _WORD
        k ^= k >> 24
        h = ((h * _MURMUR_M) & _WORD) ^ ((k * _MURMUR_M) & _WORD)
    left = length & 3
    if left:
        if left == 3:
            h ^= data[whole + 2] << 16
        if left >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _MURMUR_M) & _WORD
    h ^= h >> 13
    h = (h * _MURMUR_M) & _WORD
    return h ^ (h >> 15)


# A silent dynamic member is noticed fast; a static one is waited for long enough to restart
# (stop, reschedule, start: well under 45 s for these services) before the group rebalances.
DYNAMIC_SESSION_TIMEOUT_MS = 10_000
STATIC_SESSION_TIMEOUT_MS = 45_000


class KafkaSecurityError(ValueError):
    """Kafka security settings that do not fit together."""


def _ssl_context(settings: Settings) -> Any:
    uses_tls = settings.kafka_security_protocol in ("SSL", "SASL_SSL")
    return create_ssl_context(cafile=settings.kafka_ssl_cafile) if uses_tls else None


def connection_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's connection keywords for the configured listener security (producer, consumer
    and admin client alike); nothing beyond the bootstrap servers on the local stack."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers}
    if settings.kafka_security_protocol == "PLAINTEXT":
        return options
    options["security_protocol"] = settings.kafka_security_protocol
    options["ssl_context"] = _ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        if not (settings.kafka_sasl_mechanism and settings.kafka_sasl_username):
            raise KafkaSecurityError(
                "ORDERTAG_KAFKA_SASL_MECHANISM and ORDERTAG_KAFKA_SASL_USERNAME are required with "
                f"ORDERTAG_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
            )
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else ""
    return options


def broker_security(settings: Settings) -> BaseSecurity | None:
    """The same listener security in FastStream's terms, for the brokers it builds."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    options = connection_options(settings)
    if settings.kafka_security_protocol == "SSL":
        return BaseSecurity(ssl_context=options["ssl_context"], use_ssl=True)
    kind = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    return kind[options["sasl_mechanism"]](
        options["sasl_plain_username"],
        options["sasl_plain_password"],
        ssl_context=options["ssl_context"],
        use_ssl=settings.kafka_security_protocol == "SASL_SSL",
    )


@dataclass(frozen=True, slots=True)
class GroupMembership:
    """How a consumer-role process joins its group (``group_membership``)."""

    instance_id: str | None  # static membership (KIP-345) when set
    session_timeout_ms: int


def group_membership(settings: Settings) -> GroupMembership:
    """Static membership (KIP-345) when ``ORDERTAG_KAFKA_GROUP_INSTANCE_ID`` is set. A static
    member sends no LeaveGroup when it stops: its partitions wait for it (up to the session
    timeout) instead of moving, so a restart or a rolling update costs the other members
    nothing, and a member removed for good is noticed only when its session times out
    (docs/operations.md, "Static membership")."""
    static = settings.kafka_group_instance_id
    default = STATIC_SESSION_TIMEOUT_MS if static else DYNAMIC_SESSION_TIMEOUT_MS
    return GroupMembership(static, settings.kafka_session_timeout_ms or default)


async def delete_topics(settings: Settings, topic_sets: Sequence[Topics]) -> int:
    """Delete these runs' topics where they exist (a test session's, a benchmark's: each makes
    its own, and a long-lived local stack would gather thousands of partitions, which make a
    Kafka restart take minutes). Answers how many were deleted."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = sorted({name for topics in topic_sets for name in topics.names} & existing)
        for start in range(0, len(names), 100):
            await admin.delete_topics(names[start : start + 100])
        return len(names)
    finally:
        await admin.close()


def make_producer(settings: Settings) -> AIOKafkaProducer:
    """A bare aiokafka producer with the same safe settings, for ingest's hot path: FastStream's
    per-message publish pipeline costs more than the send itself when publishing batches."""
    track_kafka_clients()
    return AIOKafkaProducer(**connection_options(settings), **SAFE_PRODUCER)


def make_broker(settings: Settings, **kwargs: object) -> KafkaBroker:
    """A FastStream Kafka broker whose producer waits for all in-sync replicas."""
    track_kafka_clients()  # its producer's and subscribers' clients, made when it starts
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # On shutdown, let a batch in flight finish and commit (deploys allow 30 s).
        graceful_timeout=15.0,
        middlewares=broker_middlewares(),  # a span per consumed batch when tracing is on
        **kwargs,  # type: ignore[arg-type]
    )


def left_undecoded(message: StreamMessage[Any]) -> None:
    """The decoder of a batch subscriber whose handler decodes ``message.raw_message`` itself
    (into its own models, with dead letters for what fails): FastStream's own decoder would
    first JSON-parse every record's body into a value nothing reads (~13 µs an order in the
    tagger, 2.5% of its CPU)."""
    return None


async def ensure_topics(settings: Settings) -> None:
    """Create the topics if missing (idempotent), so partition counts do not depend on the
    broker's auto-create defaults. Partitions bound how many consumers of a group can work.
    With replication factor 3 and min.insync.replicas 2, a write acknowledged with acks=all
    is on two brokers at least, and one broker down stops neither producers nor consumers."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
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


async def send_batched(
    producer: AIOKafkaProducer, topic: str, records: Sequence[OutgoingRecord]
) -> list[asyncio.Future[Any]]:
    """Send many keyed records as one batch per partition; answers, per record, the future of
    its batch's acknowledgement.

    ``send()`` per record costs ~15 µs of the producer's Python (a future, the accumulator's
    checks, the partitioner call); filling a batch ~7.5 (measured with 500-record chunks). A
    record goes to the partition ``send()`` would choose for its key (murmur2, as the Java
    client), so per-key order is the same whichever way a record is sent; the producer's
    idempotence numbers these batches as its own."""
    if not records:
        return []
    partitions = sorted(await producer.partitions_for(topic))
    by_partition: defaultdict[int, list[int]] = defaultdict(list)
    for index, (key, _, _) in enumerate(records):
        by_partition[partition_for(key, partitions)].append(index)
    batch_of: dict[int, asyncio.Future[Any]] = {}  # record index -> its batch's future
    for partition, indexes in by_partition.items():
        batch, members = producer.create_batch(), list[int]()
        for index in indexes:
            key, value, headers = records[index]
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                sent = await producer.send_batch(batch, topic, partition=partition)
                batch_of.update(dict.fromkeys(members, sent))
                batch, members = producer.create_batch(), []
                # an empty batch takes any record (the broker refuses one over its limit)
                batch.append(key=key, value=value, timestamp=None, headers=headers)
            members.append(index)
        sent = await producer.send_batch(batch, topic, partition=partition)
        batch_of.update(dict.fromkeys(members, sent))
    return [batch_of[index] for index in range(len(records))]

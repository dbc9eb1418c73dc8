"""The Kafka broker every service builds, with producer settings that do not lose events."""

from faststream.kafka import KafkaBroker

from shared.settings import Settings


def make_broker(settings: Settings, **kwargs: object) -> KafkaBroker:
    """A FastStream Kafka broker whose producer waits for all in-sync replicas.

    aiokafka defaults to ``acks=1`` with idempotence off and no linger: a leader failover can
    lose an acknowledged event and a retry can duplicate one. A short linger batches concurrent
    sends into one request.
    """
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **kwargs,  # type: ignore[arg-type]
    )

"""The notifier's exception tree: one root, so one module (``http/errors.py``) maps each kind to
an HTTP answer, and the consumer knows which failures are worth waiting out."""

import redis.exceptions
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, NetworkTimeout

# What a dependency that is down or restarting raises: wait and retry, never give up the work.
MONGO_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    NetworkTimeout,
    ExecutionTimeout,
)
REDIS_OUTAGES: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)
KAFKA_OUTAGES: tuple[type[BaseException], ...] = (KafkaConnectionError, KafkaTimeoutError)


class NotifierError(Exception):
    """Root of what the notifier raises on purpose."""


class AlertNotFound(NotifierError):
    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert {alert_id!r}")
        self.alert_id = alert_id


class DependencyDown(NotifierError):
    """MongoDB, Redis or Kafka did not answer; the caller should retry after ``retry_after_s``."""

    def __init__(self, dependency: str, retry_after_s: int = 5) -> None:
        super().__init__(f"{dependency} is unavailable; retry in {retry_after_s} s")
        self.dependency = dependency
        self.retry_after_s = retry_after_s


def outage_of(error: BaseException) -> str | None:
    """Which dependency ``error`` says is down, or None when it is not an outage."""
    if isinstance(error, DependencyDown):
        return error.dependency
    for name, kinds in (
        ("mongodb", MONGO_OUTAGES),
        ("redis", REDIS_OUTAGES),
        ("kafka", KAFKA_OUTAGES),
    ):
        if isinstance(error, kinds):
            return name
    return None

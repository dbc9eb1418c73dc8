"""The exception tree every service raises for answers a client should see.

Use cases raise these (no HTTP in the service layer); ``shared.http.install_error_handlers``
turns each into one answer. Anything else that escapes is a bug and stays a 500.
"""

import aiokafka.errors
import pymongo.errors
import redis.exceptions


class OrdertagError(Exception):
    """Root of the errors a client is told about."""


class InvalidInput(OrdertagError):
    """Input that passed parsing but is wrong: names the field and the problem."""

    def __init__(self, field: str, problem: str, detail: str | None = None) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.detail = detail or f"{field}: {problem}"


class Forbidden(OrdertagError):
    """The caller may not do this (its role or scope); ``field`` names what it may not change."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(OrdertagError):
    """The thing named in the request does not exist (or is past its retention)."""


class Conflict(OrdertagError):
    """The request contradicts what is stored; ``retry_after_s`` when waiting may resolve it."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManyRequests(OrdertagError):
    """Over a rate limit: retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DependencyUnavailable(OrdertagError):
    """A dependency (Kafka, Redis, MongoDB) did not answer: nothing was done, retry later.
    ``retry_after_s`` None: the service's configured wait."""

    def __init__(self, dependency: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.dependency = dependency
        self.retry_after_s = retry_after_s


class Gone(OrdertagError):
    """The thing named was renamed or merged away; the message says where it went."""


class Busy(OrdertagError):
    """The stored state kept changing under the request (not an outage): retry shortly."""


# What a dependency that is down or restarting raises: wait and retry, never give up the work.
MONGO_OUTAGES: tuple[type[Exception], ...] = (
    pymongo.errors.ConnectionFailure,  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    pymongo.errors.ExecutionTimeout,
    pymongo.errors.WTimeoutError,
)
REDIS_OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    # a Redis Cluster failing over or resharding: the same outage, seen through the cluster
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)
KAFKA_OUTAGES: tuple[type[Exception], ...] = (
    aiokafka.errors.KafkaConnectionError,
    aiokafka.errors.KafkaTimeoutError,
)
OUTAGES = {"mongodb": MONGO_OUTAGES, "redis": REDIS_OUTAGES, "kafka": KAFKA_OUTAGES}
DEPENDENCY_NAMES = {"mongodb": "MongoDB", "redis": "Redis", "kafka": "Kafka"}


def outage_of(error: BaseException) -> str | None:
    """Which dependency (``mongodb``, ``redis``, ``kafka``) ``error`` says is down, or None
    when it is not an outage."""
    if isinstance(error, DependencyUnavailable):
        return error.dependency.lower()
    for name, kinds in OUTAGES.items():
        if isinstance(error, kinds):
            return name
    return None

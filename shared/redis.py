"""The Redis client every service builds."""

from redis import exceptions
from redis.asyncio import BlockingConnectionPool, Redis

from shared.settings import Settings

# What an unreachable, restarting or failing-over Redis (node or cluster) raises: an outage to
# answer with 503 and retry, never a bug.
REDIS_OUTAGE: tuple[type[Exception], ...] = (
    exceptions.ConnectionError,
    exceptions.TimeoutError,
    exceptions.ClusterDownError,
    exceptions.TryAgainError,
    exceptions.MasterDownError,
    OSError,
)


def make_redis(settings: Settings, max_connections: int = 32) -> Redis:
    """A client on a blocking pool with explicit timeouts.

    Many coroutines share one client: the default pool raises "Too many connections" under load
    where a blocking pool waits; redis-py 8 changed timeout defaults, so they are set here.
    """
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=10,
        socket_timeout=10,
        socket_connect_timeout=5,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections

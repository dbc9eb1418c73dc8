"""The Redis client every service builds."""

from redis.asyncio import BlockingConnectionPool, Redis

from shared.settings import Settings


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

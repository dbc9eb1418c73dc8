"""The Redis client every service builds: one node, or a Redis Cluster when the settings say so."""

from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool, Connection, Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import DataError

from shared.errors import REDIS_OUTAGES
from shared.settings import Settings

# What an unreachable, restarting or failing-over Redis (node or cluster) raises: an outage to
# answer with 503 and retry, never a bug.
REDIS_OUTAGE: tuple[type[Exception], ...] = (*REDIS_OUTAGES, OSError)

# Every Redis use takes either client: each script and multi-key call touches keys of one hash
# slot (a hash tag, or batches split by slot), so the same code runs on one node or a cluster.
AnyRedis = Redis | RedisCluster

# Connections per cluster node. The cluster client has no blocking pool: past this it raises
# MaxConnectionsError (a ConnectionError, so an outage to retry), hence a roomier limit.
CLUSTER_CONNECTIONS_PER_NODE = 100


class HiredisPackedConnection(Connection):
    """A connection that packs commands with hiredis's C packer, as redis-py's synchronous
    client does when hiredis is installed (its asyncio client packs in Python: ~30 µs for a
    figures script call of 20 arguments, a tenth of the tagger's CPU per order). Same bytes,
    same errors."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "CONFIG GET": the words of a command name go apart
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as error:  # None, True, a list: what redis-py's encoder refuses too
            raise DataError(str(error)) from error


def make_redis(
    settings: Settings, max_connections: int = 32, socket_timeout_s: float = 10
) -> AnyRedis:
    """A client with explicit timeouts: a ``RedisCluster`` when ``settings.redis_cluster`` (then
    ``redis_url`` names any one node; the client discovers the rest), else one node's client
    on a blocking pool.

    Many coroutines share one client: the default pool raises "Too many connections" under load
    where a blocking pool waits; redis-py 8 changed timeout defaults, so they are set here.
    """
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            max_connections=max(max_connections, CLUSTER_CONNECTIONS_PER_NODE),
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=5,
        )
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        connection_class=HiredisPackedConnection,  # a rediss:// or unix:// URL sets its own
        max_connections=max_connections,
        timeout=10,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=5,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections

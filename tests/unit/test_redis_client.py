"""shared.redis.make_redis: the one place a service's Redis client is built."""

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from shared.redis import CLUSTER_CONNECTIONS_PER_NODE, make_redis
from shared.settings import Settings


async def test_one_node_gets_a_blocking_pool_with_timeouts() -> None:
    redis = make_redis(Settings(redis_url="redis://127.0.0.1:1/0"), max_connections=7)
    try:
        assert isinstance(redis, Redis)
        pool = redis.connection_pool
        assert pool.max_connections == 7
        assert pool.connection_kwargs["socket_timeout"] == 10
    finally:
        await redis.aclose()


async def test_the_cluster_setting_gives_a_cluster_client_from_one_node_address() -> None:
    settings = Settings(redis_url="redis://10.0.0.5:7000/0", redis_cluster=True)
    redis = make_redis(settings, socket_timeout_s=30)
    try:
        assert isinstance(redis, RedisCluster)
        [node] = redis.nodes_manager.startup_nodes.values()  # it discovers the rest on first use
        assert (node.host, node.port) == ("10.0.0.5", 7000)
        assert node.max_connections == CLUSTER_CONNECTIONS_PER_NODE
        assert node.connection_kwargs["socket_timeout"] == 30
    finally:
        await redis.aclose()

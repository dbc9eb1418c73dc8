"""shared.redis.make_redis: the one place a service's Redis client is built."""

from typing import Any

import pytest
from redis.asyncio import Connection, Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import DataError

from shared.redis import CLUSTER_CONNECTIONS_PER_NODE, HiredisPackedConnection, make_redis
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


PACKED = [
    ("EVALSHA", "a" * 40, 2, "ot:{C-1}:order:SO-1", "ot:{C-1}:totals", "apply", 1999, 0.1, 2**70),
    ("SET", "客户", "华东 → 快递", "EX", -3),
    ("SET", b"k", memoryview(b"\x00\xff"), 1e20),
    ("CONFIG GET", "maxmemory"),  # a command name of two words
    (b"CLIENT SETNAME", b"tagger"),
]


@pytest.mark.parametrize("args", PACKED)
def test_commands_are_packed_into_the_bytes_redis_py_sends(args: tuple[Any, ...]) -> None:
    packed = HiredisPackedConnection().pack_command(*args)

    assert b"".join(packed) == b"".join(bytes(part) for part in Connection().pack_command(*args))


@pytest.mark.parametrize("bad", [None, True, [1], {"a": 1}])
def test_what_redis_py_refuses_to_send_is_refused_the_same_way(bad: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        HiredisPackedConnection().pack_command("SET", "k", bad)


async def test_one_node_connections_pack_with_hiredis() -> None:
    redis = make_redis(Settings(redis_url="redis://127.0.0.1:1/0"))
    try:
        assert redis.connection_pool.connection_class is HiredisPackedConnection
    finally:
        await redis.aclose()

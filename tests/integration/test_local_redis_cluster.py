"""`ORDERTAG_REDIS_NODES=3 deploy/local/stack.sh start redis`: a real 3-master Redis Cluster on
the local stack, which the services use with `ORDERTAG_REDIS_CLUSTER=true`. A node killed with
SIGKILL comes back with `stack.sh start redis` on its own data and rejoins; a stop and a start of
every node keeps the cluster (each node keeps its nodes.conf)."""

import asyncio
import os
import signal
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from bench.harness import free_port_block
from tests.conftest import eventually
from tests.integration.stack_script import own_stack_env, stack

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster]
CLUSTER_BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10,000


async def test_the_local_stack_runs_a_redis_cluster_that_rides_out_a_killed_node(
    tmp_path: Path,
) -> None:
    base = free_port_block(3, and_at_offset=CLUSTER_BUS_OFFSET)
    env = own_stack_env(tmp_path / "stack", REDIS_PORT=base, REDIS_NODES=3)
    await asyncio.to_thread(stack, env, "start", "redis")
    client = RedisCluster(host="127.0.0.1", port=base, socket_timeout=10)
    try:
        status = (await asyncio.to_thread(stack, env, "status", "redis")).stdout
        assert [line.split()[:2] for line in status.splitlines()] == [
            [f"redis-{n}", "running"] for n in (1, 2, 3)
        ]
        keys = [f"{{customer-{i}}}:totals" for i in range(60)]  # spread over every master
        for i, key in enumerate(keys):
            await client.set(key, i)
        masters = {client.get_node_from_key(key).port for key in keys}
        assert masters == {base, base + 1, base + 2}

        pid = int((await asyncio.to_thread(stack, env, "pid", "redis-2")).stdout)
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(stack, env, "start", "redis")

        async def every_key_back() -> bool:
            try:
                return [int(await client.get(key) or -1) for key in keys] == list(range(60))
            except Exception:  # the cluster settles: MOVED, CLUSTERDOWN, a refused connection
                return False

        await eventually(every_key_back, within=60)

        await asyncio.to_thread(stack, env, "stop", "redis")
        await asyncio.to_thread(stack, env, "start", "redis")
        await eventually(every_key_back, within=60)
    finally:
        await client.aclose()
        await asyncio.to_thread(stack, env, "stop")

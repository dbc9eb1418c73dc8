"""The local stack's servers, over real connections."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faststream import Context
from faststream.kafka import KafkaBroker
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from shared.events import OrderCreated, order_event_key
from shared.kafka import make_broker
from shared.models import Order
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import order_payload
from tests.integration.servers import free_port, port_answers, process_state
from tests.integration.stack_script import STACK, own_stack_env, stack

pytestmark = pytest.mark.integration


async def test_order_event_published_with_faststream_reaches_a_consumer_group(
    settings: Settings, run_id: str
) -> None:
    received: list[tuple[OrderCreated, bytes | None]] = []
    consumer = KafkaBroker(settings.kafka_bootstrap_servers)

    @consumer.subscriber(
        settings.topics.orders, group_id=f"group-{run_id}", auto_offset_reset="earliest"
    )
    async def collect(event: OrderCreated, key: bytes = Context("message.raw_message.key")) -> None:
        received.append((event, key))

    producer = make_broker(settings)
    event = OrderCreated(order=Order.model_validate(order_payload("SO-STACK-1")))
    async with producer, consumer:
        await consumer.start()
        await producer.publish(event, topic=settings.topics.orders, key=order_event_key(event))

        async def arrived() -> bool:
            return bool(received)

        await eventually(arrived)

    assert received == [(event, b"C-1")]


async def test_unique_order_number_index_rejects_a_duplicate(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    orders = mongo_db["orders"]
    await orders.create_index("order_no", unique=True)
    await orders.insert_one({"order_no": "SO-1", "status": "pending"})

    with pytest.raises(DuplicateKeyError):
        await orders.insert_one({"order_no": "SO-1", "status": "shipped"})

    stored = await orders.find({}, {"_id": 0}).to_list(None)
    assert stored == [{"order_no": "SO-1", "status": "pending"}]


async def test_redis_round_trip(redis_client: Redis, run_id: str) -> None:
    key = f"test:{run_id}"
    await redis_client.set(key, "figures", ex=60)

    assert await redis_client.get(key) == b"figures"
    assert await redis_client.delete(key) == 1
    await asyncio.sleep(0)


# Runs a command as a child subreaper (prctl PR_SET_CHILD_SUBREAPER): the servers stack.sh
# leaves behind become this process's children, and it does not reap them until its stdin
# closes. A server killed with SIGKILL then stays a zombie, as it can on these machines when
# the process that adopted it is slow to reap.
UNREAPING_PARENT = """
import ctypes, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("started", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("server", ["redis", "mongo"])
def test_start_brings_back_a_server_killed_with_sigkill_that_lingers_as_a_zombie(
    tmp_path: Path, server: str
) -> None:
    port = free_port()
    env = own_stack_env(tmp_path / "stack", **{f"{server.upper()}_PORT": port})
    pid_file = tmp_path / "stack" / "run" / f"{server}.pid"
    with subprocess.Popen(  # noqa: S603  (fixed arguments)
        [sys.executable, "-c", UNREAPING_PARENT, str(STACK), "start", server],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as parent:
        try:
            assert parent.stdout is not None
            assert parent.stdout.readline() == b"started\n"
            killed = int(pid_file.read_text())
            os.kill(killed, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while process_state(killed) != "Z":  # dead, not reaped: its parent waits
                assert time.monotonic() < deadline, f"{server} (pid {killed}) did not die"
                time.sleep(0.05)
            os.kill(killed, 0)  # what fooled the old liveness check: a zombie still "exists"

            started = stack(env, "start", server)

            restarted = int(pid_file.read_text())
            assert restarted != killed, started.stderr
            assert process_state(restarted) not in (None, "Z")
            assert port_answers(port)
            assert f"{server:<8} running  pid {restarted}" in stack(env, "status", server).stdout
            assert stack(env, "pid", server).stdout.strip() == str(restarted)
        finally:
            stack(env, "stop", server)
            parent.communicate(timeout=30)  # closes its stdin: it exits, the zombie goes

"""The local stack's 3-broker Kafka cluster (ORDERTAG_KAFKA_BROKERS=3): replicated topics keep
every acknowledged event when the leader of a partition is killed."""

import asyncio
import os
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bench.harness import free_port_block
from shared.kafka import ensure_topics, make_producer
from shared.settings import Settings, Topics
from tests.conftest import eventually
from tests.integration.servers import process_state
from tests.integration.stack_script import own_stack_env, stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def produce(settings: Settings, numbers: range) -> None:
    """Send each number as an event, acks=all, and wait for every acknowledgement."""
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = [
            await producer.send(settings.topics.orders, key=b"%d" % (n % 50), value=b"%d" % n)
            for n in numbers
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def consume_all(settings: Settings, expected: int) -> list[int]:
    """Every value on the topic, from the start, once ``expected`` of them have arrived."""
    consumer = AIOKafkaConsumer(
        settings.topics.orders,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[int] = []
    try:

        async def all_read() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(int(r.value) for rs in batches.values() for r in rs if r.value)
            return len(values) >= expected

        await eventually(all_read, within=120)
    finally:
        await consumer.stop()
    return values


async def topic_layout(settings: Settings) -> tuple[set[int], str]:
    """Replica counts of the orders topic's partitions, and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([settings.topics.orders])
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topics.orders)]
        )
    finally:
        await admin.close()
    replicas = {len(p["replicas"]) for p in described["partitions"]}
    entries = response.resources[0][4]
    return replicas, next(e[1] for e in entries if e[0] == "min.insync.replicas")


@pytest.mark.timeout(900)
async def test_killing_a_partition_leader_loses_no_acknowledged_event(tmp_path: Path) -> None:
    base = free_port_block(6)  # node N: broker base + 2(N-1), controller base + 2(N-1) + 1
    env = own_stack_env(
        tmp_path / "stack", KAFKA_BROKERS=3, KAFKA_PORT=base, KAFKA_CONTROLLER_PORT=base + 1
    )
    settings = Settings(
        kafka_bootstrap_servers=",".join(f"127.0.0.1:{base + 2 * n}" for n in range(3)),
        kafka_replication_factor=3,
        kafka_min_insync_replicas=2,
        topics=Topics.prefixed("cluster"),
    )
    await asyncio.to_thread(stack, env, "start", "kafka", timeout=600)
    try:
        await ensure_topics(settings)
        assert await topic_layout(settings) == ({3}, "2")
        await produce(settings, range(0, 500))
        leader = await asyncio.to_thread(stack, env, "leader", settings.topics.orders, "0")
        name, pid = leader.stdout.split()

        os.kill(int(pid), signal.SIGKILL)
        await produce(settings, range(500, 1000))  # acks=all: the two brokers left are enough
        values = await consume_all(settings, 1000)

        assert sorted(values) == list(range(1000))  # none lost, none twice
        assert process_state(int(pid)) in (None, "Z")
        await asyncio.to_thread(stack, env, "start", name, timeout=300)
        status = await asyncio.to_thread(stack, env, "status", "kafka")
        assert status.stdout.count(" running ") == 3
    finally:
        await asyncio.to_thread(stack, env, "stop", "kafka", timeout=120)

"""Tagger consumers join and leave the group while orders flow: every order tagged exactly once,
no effect doubled, and the pause each rebalance causes measured (printed, not asserted).

The default run has one join and one graceful leave; the slow one adds a third consumer and a
kill -9 (the group notices only when the session times out)."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bench.harness import free_port
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated, OrderTagged, StatusChanged, order_event_key
from shared.kafka import ensure_topics, make_broker
from shared.metrics import origin_ms
from shared.tasks import cancel_and_wait
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.conftest import (
    assert_figures_exact,
    read_topic,
    wait_for_orders,
)

pytestmark = pytest.mark.integration

CHUNK = 10  # events per publish while the stream flows
PACE_S = 0.3


@dataclass
class TaggerProcess:
    """A consumer-role tagger in a process of its own, as one replica of a deployment."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    async def assigned(self) -> None:
        """Wait until the group gave this consumer partitions (FastStream logs each assignment)."""

        async def in_log() -> bool:
            return "assigned to partitions" in self.log.read_text(errors="replace")

        await eventually(in_log, within=120, interval=0.2)

    async def batches(self) -> float:
        """Batches this process has handled (its own /metrics)."""
        try:
            async with httpx.AsyncClient(timeout=5, follow_redirects=True) as client:
                text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        except httpx.HTTPError:  # still starting
            return 0.0
        for family in text_string_to_metric_families(text):
            if family.name == "ordertag_tagger_batch_size":
                return sum(s.value for s in family.samples if s.name.endswith("_count"))
        return 0.0


async def start_tagger(settings: TaggerSettings, name: str, logs: Path) -> TaggerProcess:
    topics = settings.topics
    port = free_port()
    log = logs / f"{name}.log"
    env = {
        **os.environ,
        "ORDERTAG_MONGO_DATABASE": settings.mongo_database,
        "ORDERTAG_TOPICS__ORDERS": topics.orders,
        "ORDERTAG_TOPICS__TAGGED": topics.tagged,
        "ORDERTAG_TOPICS__DEAD_LETTER": topics.dead_letter,
        "ORDERTAG_TOPICS__ALERTS": topics.alerts,
        "ORDERTAG_TAGGER_GROUP_ID": settings.tagger_group_id,
        "ORDERTAG_TAGGER_PORT": str(port),
        "ORDERTAG_TAGGER_BATCH_MAX_RECORDS": "50",
    }
    with log.open("wb") as output:  # the child keeps its own descriptor
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "services.tagger", "--role", "consumer"),
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    return TaggerProcess(name, port, process, log)


@dataclass
class Stream:
    """Publishes the events chunk by chunk; ``hold_at`` index -> a gate the stream waits on
    before going past it, so a step of the plan happens with orders still flowing."""

    settings: TaggerSettings
    events: Sequence[OrderCreated | StatusChanged]
    gates: dict[int, asyncio.Event] = field(default_factory=dict)

    def gate(self, at_fraction: float) -> asyncio.Event:
        index = int(len(self.events) * at_fraction) // CHUNK * CHUNK
        return self.gates.setdefault(index, asyncio.Event())

    async def run(self) -> None:
        await ensure_topics(self.settings)
        broker = make_broker(self.settings)
        async with broker:
            await broker.start()
            for start in range(0, len(self.events), CHUNK):
                if start in self.gates:
                    await self.gates[start].wait()
                chunk = self.events[start : start + CHUNK]
                sent = [
                    await broker.publish(
                        event,
                        topic=self.settings.topics.orders,
                        key=order_event_key(event),
                        no_confirm=True,
                    )
                    for event in chunk
                ]
                for acknowledged in sent:
                    await acknowledged
                await asyncio.sleep(PACE_S)  # a flow, not one burst (nothing waits on its speed)


async def handled_a_batch(tagger: TaggerProcess, since: float = 0.0) -> None:
    async def worked() -> bool:
        return await tagger.batches() > since

    await eventually(worked, within=120, interval=0.2)


@dataclass
class Replicas:
    """The consumer replicas a test starts, one process each, while its stream flows."""

    settings: TaggerSettings
    logs: Path
    stream: Stream
    publishing: asyncio.Task[None]
    taggers: list[TaggerProcess] = field(default_factory=list)

    async def join(self, name: str, gate: asyncio.Event | None = None) -> TaggerProcess:
        """One more replica, working: once the group has given it partitions the stream goes on
        past ``gate`` (so orders flow across the rebalance), then it handles a batch of them."""
        tagger = await start_tagger(self.settings, name, self.logs)
        self.taggers.append(tagger)
        if gate is not None:
            await tagger.assigned()
            gate.set()
        await handled_a_batch(tagger)
        return tagger

    async def tagged_once(
        self, mongo_db: AsyncDatabase[dict[str, Any]], redis_client: Redis, expected: Any
    ) -> list[float]:
        """Once the whole stream is out: ``assert_exactly_once``, and the orders' ages."""
        await self.publishing
        events = self.stream.events
        return await assert_exactly_once(self.settings, mongo_db, redis_client, events, expected)


@asynccontextmanager
async def flowing(stream: Stream, logs: Path) -> AsyncIterator[Replicas]:
    """The stream publishing and the replicas started meanwhile; whatever still runs at the
    end (the test failed half-way) is stopped: the stream cancelled, the replicas killed."""
    replicas = Replicas(stream.settings, logs, stream, asyncio.create_task(stream.run()))
    try:
        yield replicas
    finally:
        await cancel_and_wait([replicas.publishing])
        for tagger in replicas.taggers:
            if tagger.process.returncode is None:
                tagger.process.kill()
                await tagger.process.wait()


async def assert_exactly_once(
    settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    events: Sequence[OrderCreated | StatusChanged],
    expected: Any,
) -> list[float]:
    """Every order stored with every event applied once, figures exact, each tag added once,
    one tagged event id per event; returns each tagged record's age since ingest's send (s)."""
    created = [e for e in events if isinstance(e, OrderCreated)]
    orders = await wait_for_orders(mongo_db, len(created), len(events), within=240)
    assert all(len(set(o["applied_events"])) == len(o["applied_events"]) for o in orders.values())
    await assert_figures_exact(redis_client, expected)
    doubled = await mongo_db["tag_history"].aggregate(
        [
            {"$unwind": "$added"},
            {"$group": {"_id": {"o": "$order_no", "t": "$added.tag"}, "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
        ]
    )
    assert await doubled.to_list(None) == []
    # a batch in flight at a rebalance may be published again, never under a new id
    records = await read_topic(settings, settings.topics.tagged, len(events), extra_wait=3)
    ids = {OrderTagged.model_validate_json(r.value).event_id for r in records}
    assert len(ids) == len(events)
    return [(r.timestamp - origin_ms(r)) / 1000 for r in records]


async def stop(tagger: TaggerProcess, how: signal.Signals) -> None:
    if tagger.process.returncode is None:
        tagger.process.send_signal(how)
        async with asyncio.timeout(60):
            await tagger.process.wait()


def report(name: str, ages: list[float]) -> None:
    """How long orders waited from ingest to tagged: the slowest ones waited out a rebalance
    (an order sent during one is tagged once the group has settled)."""
    ages = sorted(ages)
    p50, p99 = ages[len(ages) // 2], ages[int(len(ages) * 0.99)]
    print(
        f"\n[rebalance:{name}] ingest->tagged s: p50 {p50:.2f}, p99 {p99:.2f}, max {ages[-1]:.2f}"
    )


async def test_a_consumer_joining_and_one_leaving_mid_stream_tag_each_order_once(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
    tmp_path: Path,
) -> None:
    events, expected = order_stream(600, customers=60, seed=23, prefix=run_id)
    stream = Stream(tagger_settings, events)
    # the stream waits at 2/3 for the second to be in the group and at 5/6 for the first to be
    # stopping, so orders are still to come at each change, however slow the machine
    second_in, first_out = stream.gate(2 / 3), stream.gate(5 / 6)
    async with flowing(stream, tmp_path) as replicas:
        first = await replicas.join("first")
        await replicas.join("second", second_in)  # the group rebalances
        first_batches = await first.batches()
        first.process.send_signal(signal.SIGTERM)  # leaves: the second takes every partition
        first_out.set()
        await stop(first, signal.SIGTERM)
        ages = await replicas.tagged_once(mongo_db, redis_client, expected)
    assert first_batches > 0  # both consumers did part of the work
    report("join+leave", ages)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_three_consumers_joining_one_killed_one_leaving_tag_each_order_once(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
    tmp_path: Path,
) -> None:
    events, expected = order_stream(3000, customers=300, seed=29, prefix=run_id)
    stream = Stream(tagger_settings, events)
    gates = [stream.gate(fraction) for fraction in (0.2, 0.4, 0.6, 0.8)]
    async with flowing(stream, tmp_path) as replicas:
        first = await replicas.join("first")
        await replicas.join("second", gates[0])
        await replicas.join("third", gates[1])
        await stop(first, signal.SIGKILL)  # no goodbye: its partitions wait for the session timeout
        gates[2].set()
        await stop(replicas.taggers[1], signal.SIGTERM)
        gates[3].set()
        ages = await replicas.tagged_once(mongo_db, redis_client, expected)
    report("join+join+kill+leave", ages)

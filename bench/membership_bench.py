"""What restarting one of several tagger consumers costs, with and without static membership
(KIP-345): how long orders stop being tagged on the restarted consumer's partitions and on the
others', and how many rebalances the other consumers go through. On the real local Kafka:

    python -m bench.membership_bench [--members 3] [--rate 100]

Orders flow at a steady rate the whole time; one consumer is stopped (SIGTERM, as Kubernetes
does) and started again under the same name. A pause is the longest gap between two tagged
records of one partition (the tagger's publish times) from the stop until every order sent is
tagged.
``tests/integration/test_static_membership.py`` uses the same pieces."""

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.harness import env_for, free_port, isolated_settings, run_prefix
from bench.orders import order_payloads
from shared.events import OrderCreated
from shared.kafka import connection_options, ensure_topics, make_producer
from shared.models import Order
from shared.settings import Settings
from shared.tasks import cancel_and_wait

ASSIGNED = re.compile(r"assigned to partitions: \((.*)\)")
PARTITION = re.compile(r"partition=(\d+)")
# long enough for a stopped consumer to start again on a loaded 2-core machine
SESSION_TIMEOUT_MS = 120_000


@dataclass
class Member:
    """One consumer-role tagger process in the group, as one pod of its StatefulSet."""

    name: str
    static: bool
    log: Path
    process: asyncio.subprocess.Process | None = None

    def assignments(self) -> list[frozenset[int]]:
        """Every assignment the group gave this member, oldest first (FastStream logs each)."""
        if not self.log.exists():
            return []
        return [
            frozenset(int(p) for p in PARTITION.findall(match.group(1)))
            for match in ASSIGNED.finditer(self.log.read_text(errors="replace"))
        ]

    def holds(self) -> frozenset[int]:
        held = self.assignments()
        return held[-1] if held else frozenset()


@dataclass
class Group:
    """Tagger consumers of one group on isolated topics, started and stopped as processes."""

    settings: Settings
    logs: Path
    static: bool
    members: list[Member] = field(default_factory=list)

    @property
    def group_id(self) -> str:
        return f"{self.settings.topics.orders}-tagger"

    async def start(self, member: Member) -> None:
        extra = {
            "ORDERTAG_TAGGER_GROUP_ID": self.group_id,
            "ORDERTAG_TAGGER_PORT": str(free_port()),
            "ORDERTAG_LOG_LEVEL": "INFO",
            "ORDERTAG_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        }
        if member.static:
            extra["ORDERTAG_KAFKA_GROUP_INSTANCE_ID"] = member.name
        with member.log.open("ab") as output:  # the child keeps its own descriptor
            member.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "services.tagger", "--role", "consumer"),
                env=env_for(self.settings, **extra),
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def join(self, count: int) -> None:
        for index in range(count):
            member = Member(f"tagger-{index}", self.static, self.logs / f"tagger-{index}.log")
            self.members.append(member)
            await self.start(member)
        await until(self.balanced, within=300)

    def balanced(self) -> bool:
        """Every partition held by exactly one member, each member its share: the group has
        settled after its last rebalance."""
        held = [member.holds() for member in self.members]
        partitions = self.settings.kafka_partitions
        return sum(len(h) for h in held) == partitions == len(frozenset().union(*held)) and all(
            len(h) >= partitions // len(held) for h in held
        )

    async def stop(self, member: Member, how: signal.Signals = signal.SIGTERM) -> None:
        process = member.process
        if process is not None and process.returncode is None:
            process.send_signal(how)
            async with asyncio.timeout(60):
                await process.wait()

    async def restart(self, member: Member, how: signal.Signals = signal.SIGTERM) -> float:
        """Stop ``member`` (SIGTERM as Kubernetes does, SIGKILL as a crash) and start it again
        under the same name; seconds until the group gave it partitions again."""
        started = time.monotonic()
        assigned_before = len(member.assignments())
        await self.stop(member, how)
        await self.start(member)

        def reassigned() -> bool:
            return len(member.assignments()) > assigned_before and bool(member.holds())

        await until(reassigned, within=300)
        await until(self.balanced, within=300)
        return time.monotonic() - started

    async def close(self) -> None:
        for member in self.members:
            if member.process is not None and member.process.returncode is None:
                member.process.kill()
                await member.process.wait()


async def until(condition: Any, within: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{condition.__name__} still false after {within} s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def consumer_group(
    settings: Settings, logs: Path, members: int, *, static: bool
) -> AsyncIterator[Group]:
    await ensure_topics(settings)
    group = Group(settings, logs, static)
    try:
        await group.join(members)
        yield group
    finally:
        await group.close()


async def flow(settings: Settings, rate: int, stop: asyncio.Event) -> int:
    """Order events at ``rate`` a second, in ten small sends a second, until ``stop``."""
    producer = make_producer(settings)
    await producer.start()
    prefix, sent = run_prefix(), 0
    try:
        while not stop.is_set():
            chunk = max(rate // 10, 1)
            for payload in order_payloads(chunk, f"{prefix}-{sent}", customers=500):
                event = OrderCreated(order=Order.model_validate(payload))
                await producer.send(
                    settings.topics.orders,
                    event.model_dump_json().encode(),
                    key=event.customer_id.encode(),
                )
            sent += chunk
            await asyncio.sleep(0.1)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


class TaggedTimes:
    """When each tagged record was published, per partition of the tagged topic (keyed by
    customer like the orders, so partition N of both is the same customers)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.times: dict[int, list[float]] = {}
        self.ready = asyncio.Event()  # following from the end: what is tagged next is seen

    @property
    def count(self) -> int:
        return sum(len(times) for times in self.times.values())

    async def follow(self) -> None:
        topic = self._settings.topics.tagged
        consumer = AIOKafkaConsumer(**connection_options(self._settings))
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(self._settings.kafka_partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for partition in partitions:
                await consumer.position(partition)  # the end, resolved now
            self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    self.times.setdefault(tp.partition, []).extend(
                        r.timestamp / 1000 for r in records
                    )
        finally:
            await consumer.stop()

    def longest_gap(self, partitions: frozenset[int], since: float) -> float:
        gaps = [0.0]
        for partition in partitions:
            times = [t for t in sorted(self.times.get(partition, [])) if t >= since]
            gaps += [b - a for a, b in pairwise(times)]
            if times:
                gaps.append(times[0] - since)
        return max(gaps)


async def measure(members: int, rate: int, *, static: bool, logs: Path) -> dict[str, Any]:
    settings = isolated_settings("membership")
    async with consumer_group(settings, logs, members, static=static) as group:
        tagged = TaggedTimes(settings)
        stop = asyncio.Event()
        following = asyncio.create_task(tagged.follow())
        await until(tagged.ready.is_set, 60)
        flowing = asyncio.create_task(flow(settings, rate, stop))
        try:

            def tagging(count: int) -> Any:
                def tagged_so_far() -> bool:
                    for task in (following, flowing):
                        if task.done() and not task.cancelled() and task.exception():
                            task.result()  # failed: say why now, not after a timeout
                    return tagged.count >= count

                return tagged_so_far

            await until(tagging(rate * 3), 120)
            restarted, others = group.members[0], group.members[1:]
            before = [len(m.assignments()) for m in others]
            held = restarted.holds()
            since = time.time()
            restart_s = await group.restart(restarted)
            settled = time.time()
            await until(lambda: time.time() - settled > 5, 30)  # the flow goes on a while
            stop.set()
            sent = await flowing
            await until(tagging(sent), 300)  # every order tagged: the flow is back everywhere
        finally:
            stop.set()
            await cancel_and_wait([following, flowing])
        rest = frozenset(range(settings.kafka_partitions)) - held
        return {
            "membership": "static" if static else "dynamic",
            "members": members,
            "rate_per_s": rate,
            "orders_sent": sent,
            "restart_s": round(restart_s, 1),
            "rebalances_of_the_others": max(
                len(m.assignments()) - n for m, n in zip(others, before, strict=True)
            ),
            "same_partitions_back": restarted.holds() == held,
            "pause_restarted_partitions_s": round(tagged.longest_gap(held, since), 1),
            "pause_other_partitions_s": round(tagged.longest_gap(rest, since), 1),
        }


async def run(members: int, rate: int, logs: Path) -> list[dict[str, Any]]:
    results = []
    for static in (False, True):
        kept = logs / ("static" if static else "dynamic")
        kept.mkdir(parents=True, exist_ok=True)
        results.append(await measure(members, rate, static=static, logs=kept))
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--rate", type=int, default=100, help="orders a second")
    parser.add_argument("--logs", type=Path, help="keep the taggers' logs here")
    arguments = parser.parse_args()
    if arguments.logs:
        asyncio.run(run(arguments.members, arguments.rate, arguments.logs))
        return
    with TemporaryDirectory() as logs:
        asyncio.run(run(arguments.members, arguments.rate, Path(logs)))


if __name__ == "__main__":
    main()

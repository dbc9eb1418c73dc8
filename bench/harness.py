"""Shared pieces of the benchmarks: isolated topics and databases, service processes, timing."""

import asyncio
import os
import random
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.events import OrderCreated
from shared.kafka import delete_topics, ensure_topics, make_producer
from shared.settings import Settings, Topics

# The topics the benchmarks of this process were given (``delete_benchmark_topics``)
_TOPICS_GIVEN: list[Topics] = []


def isolated_settings(label: str) -> Settings:
    run = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    topics = Topics.prefixed(run)
    _TOPICS_GIVEN.append(topics)
    return Settings(mongo_database=run.replace("-", "_"), topics=topics)


async def delete_benchmark_topics() -> int:
    """Delete the topics this process's benchmarks made (a local stack kept across runs would
    gather them: ``shared.kafka.delete_topics``)."""
    return await delete_topics(Settings(), _TOPICS_GIVEN) if _TOPICS_GIVEN else 0


def run_prefix() -> str:
    """Order numbers of their own, so ingest's idempotency never sees an earlier run's orders."""
    return f"B{uuid.uuid4().hex[:8]}"


# Benchmarks measure what ingest can take; the per-key rate limit is policy, so it is off here.
UNLIMITED = {"ORDERTAG_INGEST_RATE_PER_MINUTE": "0"}


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    topics = settings.topics
    return {
        **os.environ,
        "ORDERTAG_MONGO_DATABASE": settings.mongo_database,
        "ORDERTAG_TOPICS__ORDERS": topics.orders,
        "ORDERTAG_TOPICS__TAGGED": topics.tagged,
        "ORDERTAG_TOPICS__DEAD_LETTER": topics.dead_letter,
        "ORDERTAG_TOPICS__ALERTS": topics.alerts,
        "ORDERTAG_LOG_LEVEL": "WARNING",
        **extra,
    }


# a service start took over 30 s on this machine under load (eight test runs at once)
START_WITHIN_S = 300


# Ports handed out by this process: two callers never get the same one before either binds it.
_HANDED_OUT: set[int] = set()


EPHEMERAL_PORTS_START = 32_768  # Linux's default ip_local_port_range starts here


def free_port_block(size: int, *, and_at_offset: int = 0) -> int:
    """The first of ``size`` consecutive ports free now, none handed out before by this process.

    Below the kernel's ephemeral range (32768+): a port the kernel chose (bind to 0) can be
    taken by any outgoing connection on the machine before the server meant for it binds it,
    which failed a Jaeger start in CI. ``and_at_offset``: the block that far above must be free
    and below that range too (a Redis Cluster node also listens on its port + 10,000 for its
    bus; drawn up to 40,000, that port was taken by a connection and failed a node's start in
    CI)."""
    top = min(30_000, EPHEMERAL_PORTS_START - and_at_offset) - size
    for _ in range(500):
        base = random.randrange(20_000, top)
        ports = [*range(base, base + size)]
        if and_at_offset:
            ports += range(base + and_at_offset, base + and_at_offset + size)
        if _HANDED_OUT.intersection(ports):
            continue
        sockets = []
        try:
            for port in ports:
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
        _HANDED_OUT.update(ports)
        return base
    raise AssertionError(f"no {size} consecutive free ports found")


def free_port() -> int:
    return free_port_block(1)


@asynccontextmanager
async def service(
    name: str, settings: Settings, port_variable: str, **extra: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Run ``python -m services.<name>`` until its /healthz answers; stop it afterwards."""
    port = free_port()
    # ORDERTAG_BENCH_LOGS=DIR keeps each service's output (why one stopped mid-run)
    logs = os.environ.get("ORDERTAG_BENCH_LOGS")
    output = open(Path(logs) / f"{name}-{port}.log", "wb") if logs else None  # noqa: SIM115, ASYNC230
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"services.{name}",
        env=env_for(settings, **{port_variable: str(port)}, **extra),
        stdout=output or asyncio.subprocess.DEVNULL,
        stderr=output or asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(int(START_WITHIN_S * 10)):
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{name} did not start")
        yield url, process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        if output is not None:
            output.close()


@dataclass
class Timer:
    started: float = 0.0
    seconds: float = 0.0

    def __enter__(self) -> "Timer":
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: Any) -> None:
        self.seconds = time.perf_counter() - self.started


async def produce(
    settings: Settings, events: list[OrderCreated], *, warm_up: bool = False
) -> float:
    """Send order events with the services' producer settings, then flush: seconds taken
    (serialisation included, as the services must do it too).

    ``warm_up`` first writes a record to every partition: a topic created a moment ago answers
    "not leader" for a while, and the retries would count against the producer (the services
    meet their topics seconds after creation)."""
    await ensure_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        if warm_up:
            for partition in await producer.partitions_for(settings.topics.orders):
                await producer.send(settings.topics.orders, b"{}", partition=partition)
            await producer.flush()
        with Timer() as timer:
            for event in events:
                await producer.send(
                    settings.topics.orders,
                    event.model_dump_json().encode(),
                    key=event.customer_id.encode(),
                )
            await producer.flush()
    finally:
        await producer.stop()
    return timer.seconds


STACK_DIR = Path(os.environ.get("ORDERTAG_STACK_DIR", Path(__file__).parents[1] / ".local"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stack_pids() -> dict[str, int]:
    """The local stack's servers (deploy/local/stack.sh writes their pid files)."""
    pids = {}
    for name in ("kafka", "mongo", "redis"):
        pidfile = STACK_DIR / "run" / f"{name}.pid"
        pid = pidfile.read_text().strip() if pidfile.exists() else ""
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            pids[name] = int(pid)
    return pids


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)] if ordered else 0.0

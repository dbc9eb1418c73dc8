"""Servers of the local stack started by a test on ports and data of its own, to be killed.

The shared stack (deploy/local/stack.sh) keeps running for the other tests; a test that kills a
server with SIGKILL gets a dedicated one from here: ``RedisServer`` (also as a node of
``RedisClusterNodes``) and ``MongoServer`` (the same launcher as the local stack, on its own H2
file). Each has async ``start``/``kill``/``stop`` and, for synchronous tests, ``start_sync`` and
``kill_sync``.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import uvicorn
from redis.asyncio.cluster import RedisCluster
from starlette.types import ASGIApp

from bench.harness import free_port
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
STACK_DIR = Path(os.environ.get("ORDERTAG_STACK_DIR", ROOT / ".local"))
LIBS = STACK_DIR / "libs"
JAVA = shutil.which("java") or "java"


def process_state(pid: int) -> str | None:
    """The state letter in /proc/PID/stat (R, S, Z for a zombie, ...), None once reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rpartition(") ")[2][0]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def port_closed_within(port: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while port_answers(port):
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} still answers {within} s after its server died")
        time.sleep(0.05)


class ServerProcess:
    """A server process of the test's own: ``kill`` is SIGKILL (a crash: no shutdown hook
    runs), ``start`` starts it again on the same port and data directory."""

    start_within = 60.0

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        return port_answers(self.port)

    def start_sync(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.log").open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(  # noqa: S603  (our own binaries and arguments)
                self.command(),
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_within
        while not self.ready():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.command()[0]} exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing ready on port {self.port} in {self.start_within} s")
            time.sleep(0.1)

    def kill_sync(self) -> None:
        """SIGKILL, then wait until the process is reaped and its port is closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        port_closed_within(self.port)

    async def start(self) -> None:
        await asyncio.to_thread(self.start_sync)

    async def kill(self) -> None:
        await asyncio.to_thread(self.kill_sync)

    async def stop(self) -> None:
        """At the end of a test: gone, however it was left."""
        await self.kill()


class RedisServer(ServerProcess):
    start_within = 20.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        append_only: bool = False,
        cluster: bool = False,
    ) -> None:
        super().__init__(data_dir, port)
        self.append_only = append_only
        self.cluster = cluster

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (Debian package redis-server)"
        command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes" if self.append_only else "no", "--dir", str(self.data_dir),
        ]  # fmt: skip
        if self.cluster:
            command += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{self.port}.conf",
            ]
        return command

    def ready(self) -> bool:
        """PONG, not just an open port: it answers LOADING while it replays its append-only file."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class MongoServer(ServerProcess):
    """The local stack's MongoDB-wire launcher (deploy/local/MongoWireServer.java)."""

    start_within = 90.0

    def __init__(self, data_dir: Path, port: int | None = None, *, fsync: bool = True) -> None:
        super().__init__(data_dir, port)
        self.fsync = fsync

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            JAVA, "-Xmx384m", "-XX:+UseSerialGC", "-cp", f"{LIBS}/*",
            str(LOCAL / "MongoWireServer.java"), "127.0.0.1", str(self.port),
            str(self.data_dir / "mongo.h2"),
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        return {**os.environ, "ORDERTAG_MONGO_FSYNC": "true" if self.fsync else "false"}


class StockMongoServer(MongoServer):
    """mongo-java-server's own H2 backend (tests/integration/StockH2Server.java) on the same
    file layout as ``MongoServer``: writes files as the launcher's earlier versions did."""

    def command(self) -> list[str]:
        return [
            JAVA, "-Xmx384m", "-XX:+UseSerialGC", "-cp", f"{LIBS}/*",
            str(Path(__file__).with_name("StockH2Server.java")), "127.0.0.1", str(self.port),
            str(self.data_dir / "mongo.h2"),
        ]  # fmt: skip

    def terminate_sync(self) -> None:
        """SIGTERM: the library closes its file, committing what it holds in memory."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        port_closed_within(self.port)


class RedisClusterNodes:
    """A real Redis Cluster of ``len(ports)`` masters (no replicas), created with redis-cli."""

    def __init__(self, directory: Path, ports: list[int]) -> None:
        self.nodes = [RedisServer(directory / str(port), port, cluster=True) for port in ports]

    @property
    def url(self) -> str:
        return self.nodes[0].url.removesuffix("/0")

    def start(self) -> None:
        for node in self.nodes:
            node.start_sync()
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is not installed (Debian package redis-tools)"
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(  # noqa: S603 (our own binary and arguments)
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = subprocess.run(  # noqa: S603
                [cli, "-p", str(self.nodes[0].port), "cluster", "info"],
                capture_output=True,
                check=False,
            ).stdout
            if b"cluster_state:ok" in info:
                return
            time.sleep(0.2)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill_sync()

    @classmethod
    def beside_the_stack(cls, directory: Path, offset: int) -> Iterator["RedisClusterNodes"]:
        """Three masters on ``ORDERTAG_REDIS_PORT`` + ``offset``..+2 (each test file its own
        offset, so stacks and files side by side do not collide), started, stopped after."""
        base = int(os.environ.get("ORDERTAG_REDIS_PORT", "6379")) + offset
        nodes = cls(directory, [base, base + 1, base + 2])
        nodes.start()
        try:
            yield nodes
        finally:
            nodes.stop()

    async def client(self) -> AsyncIterator[RedisCluster]:
        """A cluster client that has loaded the slot map, closed after."""
        redis = RedisCluster.from_url(self.url, socket_timeout=30, socket_connect_timeout=5)
        await redis.initialize()
        try:
            yield redis
        finally:
            await redis.aclose()


def service_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a service process a test starts: this test's database and topics
    (and the stack's addresses from the test's own environment), plus ``overrides``."""
    topics = settings.topics
    return {
        **os.environ,
        "ORDERTAG_MONGO_DATABASE": settings.mongo_database,
        "ORDERTAG_TOPICS__ORDERS": topics.orders,
        "ORDERTAG_TOPICS__TAGGED": topics.tagged,
        "ORDERTAG_TOPICS__DEAD_LETTER": topics.dead_letter,
        "ORDERTAG_TOPICS__ALERTS": topics.alerts,
        **overrides,
    }


async def start_module(
    module: str, *args: str, env: dict[str, str], log: Any = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """``python -m module args…`` as a process of its own, to be killed by the test."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, env=env, stdout=log, stderr=log
    )


@asynccontextmanager
async def served_app(
    app: ASGIApp, lifespan: Literal["auto", "on", "off"] = "auto"
) -> AsyncIterator[str]:
    """``app`` under uvicorn on a free local port, in this event loop, for the block: its URL
    (real connections, as a browser or a client that can be cut off needs)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):  # 30 s
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
        if not server.started:
            raise RuntimeError("the app did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

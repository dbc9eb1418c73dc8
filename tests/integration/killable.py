"""Dedicated Redis and MongoDB-wire servers a test can kill with SIGKILL and start again, on
ports of their own, so an outage test never disturbs the shared local stack."""

import asyncio
import os
import signal
from pathlib import Path

from bench.harness import free_port
from tests.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = Path(os.environ.get("ORDERTAG_STACK_DIR", ROOT / ".local"))


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


class KillableServer:
    """A server process of the test's own: ``kill()`` is SIGKILL, ``start()`` starts it again
    on the same port and data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.process: asyncio.subprocess.Process | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    async def ready(self) -> bool:
        return await _port_open(self.port)

    async def start(self, within: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.log").open("ab") as log:  # the child keeps its own copy
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), stdout=log, stderr=log, start_new_session=True
            )
        await eventually(self.ready, within=within, interval=0.1)

    async def kill(self) -> None:
        """SIGKILL, then wait until the process is reaped and the port is closed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

        async def closed() -> bool:
            return not await _port_open(self.port)

        await eventually(closed, within=10)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class RedisServer(KillableServer):
    def __init__(self, data_dir: Path, *, append_only: bool) -> None:
        super().__init__(data_dir)
        self.append_only = append_only

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.append_only else "no",
            "--dir",
            str(self.data_dir),
        ]

    async def ready(self) -> bool:
        # answers LOADING while it replays its append-only file
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.write(b"PING\r\n")
        await writer.drain()
        reply = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return reply.startswith(b"+PONG")


class MongoServer(KillableServer):
    """The same mongo-java-server launcher as the local stack, on its own H2 file."""

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            "java",
            "-Xmx384m",
            "-XX:+UseSerialGC",
            "-cp",
            f"{STACK_DIR / 'libs'}/*",
            str(ROOT / "deploy" / "local" / "MongoWireServer.java"),
            "127.0.0.1",
            str(self.port),
            str(self.data_dir / "mongo.h2"),
        ]

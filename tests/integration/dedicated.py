"""A Redis or MongoDB-wire server of a test's own, on its own port, that the test can stop and
start again (the shared local stack stays up for everyone else)."""

import asyncio
import os
import shutil
import socket
from pathlib import Path

from bench.harness import free_port
from tests.conftest import eventually

ROOT = Path(__file__).parents[2]
STACK_DIR = Path(os.environ.get("ORDERTAG_STACK_DIR", ROOT / ".local"))


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class DedicatedServer:
    """One server process; ``stop()`` kills it (SIGKILL: an outage, not a shutdown)."""

    def __init__(self, command: list[str], port: int, start_within: float) -> None:
        self.command = command
        self.port = port
        self.start_within = start_within
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )

        async def listening() -> bool:
            return await asyncio.to_thread(_port_open, self.port)

        await eventually(listening, within=self.start_within, interval=0.1)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

        async def closed() -> bool:
            return not await asyncio.to_thread(_port_open, self.port)

        await eventually(closed, within=10, interval=0.1)


def redis_server(data_dir: Path) -> DedicatedServer:
    port = free_port()
    command = [
        shutil.which("redis-server") or "redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(data_dir),
    ]  # fmt: skip
    return DedicatedServer(command, port, start_within=20)


def mongo_server(data_dir: Path) -> DedicatedServer:
    port = free_port()
    command = [
        "java", "-Xmx256m", "-XX:+UseSerialGC", "-cp", f"{STACK_DIR / 'libs'}/*",
        str(ROOT / "deploy" / "local" / "MongoWireServer.java"),
        "127.0.0.1", str(port), str(data_dir / "mongo.h2"),
    ]  # fmt: skip
    return DedicatedServer(command, port, start_within=90)

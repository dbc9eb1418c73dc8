"""Killing and restarting what runs: the three services (subprocesses of the run) and the stack's
servers (started by deploy/local/stack.sh, their pids in its pid files).

A process killed with SIGKILL can linger as a zombie, and ``kill -0`` still succeeds on a
zombie: liveness here is the process state in /proc and the port, never ``kill -0`` alone.
"""

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

from tests.chaos.environment import Environment


class StartFailed(RuntimeError):
    """A process did not come up in time; the message says which and where its log is."""


def process_alive(pid: int) -> bool:
    """Running (not a zombie, not gone), by /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def wait_for(check: object, within: float, what: str) -> float:
    """Poll ``check()`` until true; the seconds it took."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > within:
            raise StartFailed(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


class StackServer:
    """Kafka, the MongoDB-wire server or Redis, as deploy/local/stack.sh runs it."""

    def __init__(self, name: str, port: int, env: Environment) -> None:
        self.name = name
        self.port = port
        self._env = env
        self._pidfile = env.stack_dir / "run" / f"{name}.pid"

    def pid(self) -> int | None:
        try:
            text = self._pidfile.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def alive(self) -> bool:
        pid = self.pid()
        return pid is not None and process_alive(pid) and port_open(self.port)

    async def kill(self) -> None:
        pid = self.pid()
        if pid is None or not process_alive(pid):
            raise StartFailed(f"{self.name} is not running (pid file {self._pidfile})")
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: not process_alive(pid), 30, f"{self.name} to die")
        await wait_for(lambda: not port_open(self.port), 30, f"{self.name}'s port to close")
        # a zombie would pass stack.sh's `kill -0` check, which would then start nothing
        self._pidfile.unlink(missing_ok=True)

    def wipe_data(self) -> None:
        """Redis restarted with no data (what a restart without persistence gives)."""
        assert self.name == "redis", "only Redis is restarted empty"
        shutil.rmtree(self._env.stack_dir / "data" / "redis", ignore_errors=True)

    async def start(self) -> str | None:
        """``stack.sh start NAME``; when it gives up waiting (a busy machine), the server may
        still come up: wait for it longer, and say so."""
        process = await asyncio.create_subprocess_exec(
            str(self._env.stack_script),
            "start",
            self.name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        await wait_for(self.alive, 240, f"{self.name} to be up")
        if process.returncode != 0:
            said = output.decode().strip().splitlines()[-1:]
            return f"stack.sh start {self.name} failed ({' '.join(said)}) but it came up later"
        return None


class ServiceProcess:
    """``python -m services.NAME`` with the run's environment; log appended to a file."""

    def __init__(self, name: str, port: int, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = port
        self._env = env
        self._log = log
        self.process: asyncio.subprocess.Process | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, within: float = 120) -> str | None:
        with self._log.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n".encode())
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                f"services.{self.name}",
                env=self._env,
                stdout=log,
                stderr=log,
            )
        url = f"http://127.0.0.1:{self.port}/healthz"
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.process.returncode is not None:
                    raise StartFailed(f"{self.name} exited at start; see {self._log}")
                try:
                    if (await client.get(url)).status_code == 200:
                        return None
                except httpx.TransportError:
                    pass
                if time.monotonic() - started > within:
                    raise StartFailed(f"{self.name} did not answer /healthz; see {self._log}")
                await asyncio.sleep(0.1)

    async def health(self) -> str:
        """What its ``/healthz`` says: "ok", or why not (a Kafka producer broken for good)."""
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.get(f"http://127.0.0.1:{self.port}/healthz")
        except httpx.TransportError as error:
            return f"no answer ({type(error).__name__})"
        body = answer.json() if answer.headers.get("content-type") == "application/json" else {}
        return "ok" if answer.status_code == 200 else str(body.get("reason") or answer.status_code)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def dump_tasks(self) -> None:
        """SIGUSR1: the service logs where each of its tasks waits (shared.diagnostics)."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.5)  # the log lines are written before the stop that follows

    async def stop(self) -> None:
        """SIGTERM: the graceful stop (consumers commit, pending deliveries flush)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            async with asyncio.timeout(30):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

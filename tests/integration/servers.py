"""Servers of the local stack started by a test on ports and data of its own, to be killed.

The shared stack (deploy/local/stack.sh) keeps running for the other tests; a test that kills a
server with SIGKILL gets a dedicated one from here.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
STACK_DIR = Path(os.environ.get("ORDERTAG_STACK_DIR", ROOT / ".local"))
LIBS = STACK_DIR / "libs"
JAVA = shutil.which("java") or "java"


def free_port() -> int:
    """A port nothing listens on now (the kernel's choice among ephemeral ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports, below the kernel's ephemeral range (the
    stack numbers a cluster's ports from one base)."""
    for _ in range(200):
        base = random.randrange(20_000, 30_000, 2)
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise AssertionError(f"no {size} consecutive free ports found")


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


def wait_for_port(
    port: int, process: subprocess.Popen[bytes] | None = None, within: float = 90.0
) -> None:
    """Wait until something accepts connections on ``port`` (the server is up)."""
    deadline = time.monotonic() + within
    while not port_answers(port):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server on port {port} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answered on port {port} within {within} s")
        time.sleep(0.1)


def start_mongo_wire(
    port: int, data_file: Path, log: Path, *, fsync: bool = True
) -> subprocess.Popen[bytes]:
    """The local MongoDB-wire server (deploy/local/MongoWireServer.java) on a port and file
    of its own."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603  (a fixed command)
            [
                JAVA,
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-cp",
                f"{LIBS}/*",
                str(LOCAL / "MongoWireServer.java"),
                "127.0.0.1",
                str(port),
                str(data_file),
            ],
            env={**os.environ, "ORDERTAG_MONGO_FSYNC": "true" if fsync else "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, process)
    return process


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL, as a crash or the OOM killer would: no shutdown hook runs."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

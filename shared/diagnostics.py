"""Where a running service's asyncio tasks wait: for a process that stopped making progress
without a log line (a Kafka commit retried for ever, a connection never answered).

``kill -USR1 <pid>`` logs every task's await chain; ``py-spy dump`` shows only the event loop
idle in ``select`` for such a process.
"""

import asyncio
import gc
import inspect
import signal
from typing import Any

import structlog

log = structlog.get_logger("diagnostics")


def awaiting(coro: Any) -> list[str]:
    """Where a suspended coroutine waits: its frame, and the frames of what it awaits."""
    lines = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        frame = frame or getattr(coro, "ag_frame", None)
        if frame is not None:
            lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        coro = awaited or getattr(coro, "ag_await", None)
        if coro is not None and type(coro).__name__ in (
            "async_generator_asend",
            "async_generator_athrow",
        ):
            # an ``async with`` over an async generator: follow the generator it drives
            coro = next((g for g in gc.get_referents(coro) if inspect.isasyncgen(g)), None)
    return lines


def task_stacks(loop: asyncio.AbstractEventLoop) -> dict[str, list[str]]:
    """Every task of ``loop`` by name, with where it waits."""
    return {task.get_name(): awaiting(task.get_coro()) for task in asyncio.all_tasks(loop)}


def log_task_stacks(reason: str) -> None:
    """One warning per task of the running loop, with its await chain."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return
    for name, frames in task_stacks(loop).items():
        log.warning("task_stack", reason=reason, task=name, frames=frames)


def dump_tasks_on_sigusr1() -> None:
    """Log the tasks' await chains on SIGUSR1. The handler runs on the main thread between two
    bytecodes of whatever it runs, which under uvicorn is the event loop."""
    signal.signal(signal.SIGUSR1, lambda signum, frame: log_task_stacks("SIGUSR1"))

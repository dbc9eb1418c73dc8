"""``kill -USR1`` makes a service log where each of its asyncio tasks waits
(``shared.diagnostics``), on the standard event loop the services run on."""

import asyncio
import os
import signal

from structlog.testing import capture_logs

from shared.diagnostics import dump_tasks_on_sigusr1


async def _waits_on(event: asyncio.Event) -> None:
    await event.wait()


async def test_sigusr1_logs_each_task_with_where_it_waits() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    event = asyncio.Event()
    waiter = asyncio.create_task(_waits_on(event), name="stuck-waiter")
    try:
        dump_tasks_on_sigusr1()
        await asyncio.sleep(0)  # the task reaches its wait
        with capture_logs() as logs:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.05)  # the handler runs at the loop's next bytecode
    finally:
        signal.signal(signal.SIGUSR1, previous)
        event.set()
        await waiter

    [stuck] = [entry for entry in logs if entry.get("task") == "stuck-waiter"]
    assert stuck["event"] == "task_stack"
    assert stuck["reason"] == "SIGUSR1"
    assert any("_waits_on" in frame for frame in stuck["frames"])
    assert any("in wait" in frame for frame in stuck["frames"])

"""Stopping background tasks for sure, on Python 3.11 too."""

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

CANCEL_AGAIN_S = 0.5


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, again_every_s: float = CANCEL_AGAIN_S
) -> None:
    """Cancel ``tasks`` and wait until every one has finished, cancelling again those that
    still run after ``again_every_s``.

    A single cancel followed by an await can wait for ever: on Python 3.11 a cancellation is
    lost when it arrives just as an ``asyncio.wait_for`` finishes its inner work (the result
    is returned and the cancellation dropped, CPython gh-86296, fixed in 3.12). PyMongo and
    redis-py read every reply through ``wait_for``, so a loop cancelled mid-read runs on to
    its next sleep. Seen as a tagger whose shutdown hung on its jobs and customer loops.

    What the tasks raised is retrieved here and dropped (as ``gather(return_exceptions=True)``
    would): they are being stopped, their outcome no longer matters.
    """
    tasks = list(tasks)
    running = {task for task in tasks if not task.done()}
    while running:
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=again_every_s)
    for task in tasks:
        if not task.cancelled():
            with contextlib.suppress(BaseException):
                task.result()

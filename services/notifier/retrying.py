"""Riding out a dependency outage: retry with capped exponential backoff and jitter, counted and
logged, so work waits for MongoDB, Redis or Kafka to come back instead of being dropped."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from services.notifier.metrics import DEPENDENCY_RETRIES
from shared.errors import outage_of

log = structlog.get_logger("notifier.retrying")
T = TypeVar("T")


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff with jitter (0.5–1.5×), capped: ``attempt`` counts from 1."""
    jitter: float = random.uniform(0.5, 1.5)  # noqa: S311  (spreading retries, not secrets)
    return float(min(cap_s, base_s * 2 ** min(attempt - 1, 16)) * jitter)


async def through_outages(
    operation: Callable[[], Awaitable[T]],
    what: str,
    *,
    within_s: float | None = None,
    base_s: float = 0.1,
    cap_s: float = 5.0,
) -> T:
    """Run ``operation``; while a dependency is down, wait and run it again. Gives up (re-raises)
    only after ``within_s`` seconds when given; errors that are not outages pass at once."""
    loop = asyncio.get_running_loop()
    deadline = None if within_s is None else loop.time() + within_s
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as error:
            dependency = outage_of(error)
            if dependency is None or (deadline is not None and loop.time() >= deadline):
                raise
            attempt += 1
            DEPENDENCY_RETRIES.labels(dependency).inc()
            delay = backoff_s(attempt, base_s, cap_s)
            log.warning(
                "dependency_down_retrying",
                what=what,
                dependency=dependency,
                attempt=attempt,
                retry_in_s=round(delay, 2),
                error=repr(error)[:200],
            )
            await asyncio.sleep(delay)

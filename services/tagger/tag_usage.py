"""How many orders and customers carry each tag, for the Tags page: counted at most every
``max_age_s`` and shared by the requests meanwhile.

Counting reads every order and every customer (an ``$unwind`` of their tag names): ~0.9-3 s for
100,000 orders on the local MongoDB-wire server, and the page asks again after each edit. So a
count is kept for a while and said to be as of its time; concurrent requests wait for the one
count under way instead of starting their own. A caller that knows the counts moved (the page
after its rename or merge job) asks for a fresh one.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

Count = Callable[[], Awaitable[dict[str, int]]]


@dataclass(frozen=True, slots=True)
class Usage:
    orders: dict[str, int]
    customers: dict[str, int]
    counted_at: datetime


class TagUsage:
    def __init__(
        self,
        count_orders: Count,
        count_customers: Count,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count_orders = count_orders
        self._count_customers = count_customers
        self._max_age_s = max_age_s
        self._clock = clock
        self._kept: tuple[float, Usage] | None = None
        self._counting = asyncio.Lock()

    async def counts(self, *, fresh: bool = False) -> Usage:
        """The counts, no older than ``max_age_s`` (none kept with ``fresh``: counted after
        this call began, by it or by a count that started after it)."""
        asked_at = self._clock()
        kept = self._usable(asked_at, fresh)
        if kept is not None:
            return kept
        async with self._counting:
            kept = self._usable(asked_at, fresh)  # counted while this one waited
            if kept is not None:
                return kept
            started = self._clock()
            orders = await self._count_orders()
            customers = await self._count_customers()
            usage = Usage(orders, customers, datetime.now(UTC))
            self._kept = (started, usage)
            return usage

    def _usable(self, asked_at: float, fresh: bool) -> Usage | None:
        if self._kept is None:
            return None
        started, usage = self._kept
        if fresh:
            return usage if started >= asked_at else None
        return usage if asked_at - started <= self._max_age_s else None

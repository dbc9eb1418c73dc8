"""Reads the support page makes of what the tagger keeps (its rule sets, its catalog): they
change by hand, seldom, so each is read again at most once a minute, one read at a time."""

import asyncio
import time
from collections.abc import Awaitable, Callable

REFRESH_S = 60.0


class NowAndThen:
    """Runs a read when the last one that finished is ``refresh_s`` old (the first call always
    reads); callers meanwhile wait for the read under way. A read that raises counts as not
    done: the next call tries again."""

    def __init__(self, read: Callable[[], Awaitable[None]], refresh_s: float = REFRESH_S) -> None:
        self._read = read
        self._refresh_s = refresh_s
        self._read_at = -refresh_s
        self._reading = asyncio.Lock()

    async def fresh_enough(self) -> None:
        if self._due():
            async with self._reading:
                if self._due():
                    await self._read()
                    self._read_at = time.monotonic()

    def _due(self) -> bool:
        return time.monotonic() - self._read_at >= self._refresh_s

"""Request limits: per API key or signed-in person on ``/api``, per client address on
``/login``; 429 with ``Retry-After`` over the limit.

Counted in Redis (fixed one-minute windows, shared by every notifier process). With Redis down
the count falls back to this process's memory: still a limit, never a 500.
(A candidate for ``shared/ratelimit.py`` once the services agree on one limiter.)
"""

import time
from collections import Counter

import structlog
from redis.asyncio import Redis

from services.notifier.errors import REDIS_OUTAGES

log = structlog.get_logger("notifier.limits")
WINDOW_S = 60


class RateLimiter:
    def __init__(self, redis: Redis, name: str, per_minute: int) -> None:
        self._redis = redis
        self._name = name
        self._per_minute = per_minute
        self._local: Counter[tuple[str, int]] = Counter()

    async def retry_after(self, who: str) -> int | None:
        """Count one request by ``who``; None when allowed, else seconds until the next window."""
        now = time.time()
        window = int(now // WINDOW_S)
        try:
            count = await self._count_in_redis(who, window)
        except REDIS_OUTAGES as error:
            log.warning("rate_limit_counted_locally", limiter=self._name, error=repr(error)[:120])
            count = self._count_locally(who, window)
        if count <= self._per_minute:
            return None
        return max(1, int((window + 1) * WINDOW_S - now) + 1)

    async def _count_in_redis(self, who: str, window: int) -> int:
        key = f"ratelimit:notifier:{self._name}:{who}:{window}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW_S + 1)
        count, _ = await pipe.execute()
        return int(count)

    def _count_locally(self, who: str, window: int) -> int:
        for stale in [k for k in self._local if k[1] < window]:
            del self._local[stale]
        self._local[(who, window)] += 1
        return self._local[(who, window)]

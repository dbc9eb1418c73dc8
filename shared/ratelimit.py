"""Request rate limits per subject (an API key, a client address) in fixed one-minute windows.

Counted in Redis so every process of a service shares the limit. Each window is one key with the
subject as its hash tag, so it works on Redis Cluster as on one node. When Redis is unreachable
the limiter keeps counting in the process (each process then allows the limit on its own): a
limiter must never turn a Redis outage into errors on routes that do not need Redis. Routes that
need Redis anyway ask for ``strict`` and answer 503 instead.
"""

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from shared.auth import ApiKey
from shared.errors import REDIS_OUTAGES, DependencyUnavailable, TooManyRequests

log = structlog.get_logger("ratelimit")
WINDOW_S = 60
# One call, one key: counts the request and makes the window's key expire (atomic, cluster-safe).
_COUNT = """
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return used
"""
REDIS_OUTAGE: tuple[type[Exception], ...] = (*REDIS_OUTAGES, OSError)


class RateLimiter:
    def __init__(
        self,
        redis: "Redis | RedisCluster",
        per_minute: int,
        clock: Callable[[], float] = time.time,
        namespace: str = "api",
        on_local_count: Callable[[], None] | None = None,
    ) -> None:
        """``namespace`` keeps the counts of different services (or limits) apart;
        ``on_local_count`` is told of each request counted in the process (Redis down)."""
        self._redis = redis
        self.per_minute = per_minute
        self._namespace = namespace
        self._clock = clock
        self._on_local_count = on_local_count
        self._local: dict[tuple[str, int], int] = {}
        self._count = redis.register_script(_COUNT)

    async def hit(self, subject: str, *, strict: bool = False) -> int | None:
        """Count one request of ``subject``: None when within the limit, else the seconds until
        the window ends (for Retry-After). A limit of 0 means no limit. Redis down: counted in
        the process, or (``strict``) ``DependencyUnavailable``."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        window = int(now // WINDOW_S)
        try:
            used = await self._count_in_redis(subject, window)
        except REDIS_OUTAGE as error:
            if strict:
                raise DependencyUnavailable("Redis", "Redis is unreachable; retry later") from error
            used = self._count_locally(subject, window)
            if self._on_local_count is not None:
                self._on_local_count()
            if used == 1:
                log.warning("ratelimit_counting_locally", subject=subject, error=repr(error))
        if used <= self.per_minute:
            return None
        return max(1, WINDOW_S - int(now % WINDOW_S))

    async def check(self, subject: str, refusal: str, *, strict: bool = False) -> None:
        """``hit``, raising ``TooManyRequests`` with ``refusal`` as its message over the limit."""
        retry_after = await self.hit(subject, strict=strict)
        if retry_after is not None:
            raise TooManyRequests(refusal, retry_after)

    async def _count_in_redis(self, subject: str, window: int) -> int:
        key = f"ratelimit:{{{self._namespace}:{subject}}}:{window}"
        return int(await self._count(keys=[key], args=[2 * WINDOW_S]))

    def _count_locally(self, subject: str, window: int) -> int:
        for stale in [k for k in self._local if k[1] < window]:
            del self._local[stale]
        used = self._local.get((subject, window), 0) + 1
        self._local[(subject, window)] = used
        return used


def limiter_of(request: Request) -> RateLimiter:
    """The app's limiter (``app.state.rate_limiter``), built on first use from
    ``app.state.redis`` and ``app.state.rate_per_minute`` for apps that set only those."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is None:
        limiter = RateLimiter(state.redis, state.rate_per_minute)
        state.rate_limiter = limiter
    return limiter


def rate_limited(
    require: Callable[..., Coroutine[Any, Any, ApiKey]],
) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """Wrap a scope check: after it passes, count the request against the key's minute;
    429 with Retry-After over the limit."""

    async def check(request: Request, key: Annotated[ApiKey, Depends(require)]) -> ApiKey:
        limiter = limiter_of(request)
        await limiter.check(f"key:{key.name}", over_limit(key.name, limiter.per_minute))
        return key

    return check


def over_limit(key_name: str, per_minute: int) -> str:
    return f"API key {key_name!r} is over its limit of {per_minute} requests a minute"

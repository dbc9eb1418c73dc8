"""Per-API-key request rate limits in Redis (fixed one-minute windows, shared by all processes)."""

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, status
from redis.asyncio import Redis

from shared.auth import ApiKey


def rate_limited(
    require: Callable[..., Coroutine[Any, Any, ApiKey]],
) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """Wrap a scope check: after it passes, count the request against the key's minute."""
    from fastapi import Depends

    async def check(request: Request, key: ApiKey = Depends(require)) -> ApiKey:  # noqa: B008
        redis: Redis = request.app.state.redis
        limit: int = request.app.state.rate_per_minute
        window = int(time.time() // 60)
        counter = f"ratelimit:{key.name}:{window}"
        pipe = redis.pipeline(transaction=True)
        pipe.incr(counter)
        pipe.expire(counter, 120)
        used, _ = await pipe.execute()
        if used > limit:
            retry = 60 - int(time.time() % 60)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"API key {key.name!r} is over its limit of {limit} requests a minute",
                headers={"Retry-After": str(retry)},
            )
        return key

    return check

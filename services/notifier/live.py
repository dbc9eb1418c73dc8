"""Live updates for the support page: alert changes fan out over Redis pub/sub, so every
notifier process's open pages see changes made through any of them."""

import json
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

CHANNEL = "ordertag:alerts:live"


class LiveFeed:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(self, change: str, alert: dict[str, Any]) -> None:
        await self._redis.publish(
            CHANNEL, json.dumps({"change": change, "alert": alert}, default=str, ensure_ascii=False)
        )

    async def publish_many(self, change: str, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        pipe = self._redis.pipeline(transaction=False)
        for alert in alerts:
            pipe.publish(
                CHANNEL,
                json.dumps({"change": change, "alert": alert}, default=str, ensure_ascii=False),
            )
        await pipe.execute()

    async def follow(self) -> AsyncIterator[str]:
        """Server-sent event lines, one per change, with a comment every 15 s to keep it open."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            yield ": connected\n\n"
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=15)
                if message is None:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {message['data'].decode()}\n\n"
        finally:
            await pubsub.unsubscribe(CHANNEL)
            await pubsub.aclose()  # type: ignore[no-untyped-call]

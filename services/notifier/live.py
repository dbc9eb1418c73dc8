"""Live updates for the support page: alert changes fan out over Redis pub/sub, so every
notifier process's open pages see changes made through any of them.

Publishing is best effort: the change is already stored (MongoDB is the record, a page that
reconnects reloads it), so Redis being down is logged and counted, never an error for the caller.
"""

from collections.abc import AsyncIterator
from typing import Any

import structlog
from pydantic_core import to_json
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from services.notifier.metrics import LIVE_UPDATE_FAILURES
from shared.errors import REDIS_OUTAGES
from shared.redis import AnyRedis

CHANNEL = "ordertag:alerts:live"
# a comment line this often while nothing changes: proxies see a live stream, not an idle one
KEEP_ALIVE_S = 15.0
# Every change of a batch in one call and in order. A script touching no key, so it runs on one
# node or any node of a Redis Cluster (which broadcasts PUBLISH, and refuses it in pipelines).
_PUBLISH_ALL = """
for i = 2, #ARGV do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
return #ARGV - 1
"""
log = structlog.get_logger("notifier.live")


def _event(change: str, alert: dict[str, Any]) -> bytes:
    """A change as the page's EventSource gets it: JSON with times in RFC 3339 (``Z`` for
    UTC; ``json.dumps`` with ``default=str``, used before, wrote a space for the T and took
    ~4x as long on a new alert's document); a value pydantic-core does not know (an
    ``ObjectId``) as text."""
    return to_json({"change": change, "alert": alert}, fallback=str)


class LiveFeed:
    def __init__(self, redis: AnyRedis) -> None:
        self._redis = redis
        self._publish_all = redis.register_script(_PUBLISH_ALL)

    async def publish(self, change: str, alert: dict[str, Any]) -> None:
        await self.publish_many(change, [alert])

    async def publish_many(self, change: str, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        try:
            await self._publish_all(args=[CHANNEL, *(_event(change, a) for a in alerts)])
        except REDIS_OUTAGES as error:
            LIVE_UPDATE_FAILURES.inc(len(alerts))
            log.warning("live_update_not_published", change=change, error=repr(error)[:200])

    async def subscribe(self) -> PubSub:
        """Subscribe before the answer starts, so Redis being down is a 503, not a broken
        stream. On a Redis Cluster a classic SUBSCRIBE on any one node hears every PUBLISH (the
        cluster broadcasts it); redis-py's cluster pub/sub picks the node from the channel's
        slot, so the client must know the slots first."""
        if isinstance(self._redis, RedisCluster):
            await self._redis.initialize()  # a no-op once the client knows the cluster
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(CHANNEL)
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return pubsub

    async def follow(self, pubsub: PubSub) -> AsyncIterator[str]:
        """Server-sent event lines, one per change, with a comment every ``KEEP_ALIVE_S`` to keep
        it open."""
        try:
            yield ": connected\n\n"
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=KEEP_ALIVE_S
                )
                if message is None:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {message['data'].decode()}\n\n"
        except REDIS_OUTAGES as error:  # the page's EventSource reconnects by itself
            log.warning("live_stream_ended", error=repr(error)[:200])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

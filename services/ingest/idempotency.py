"""Idempotency by order number, in Redis: the same order twice is accepted once.

A claim is taken atomically before publishing (``pending``, short-lived) and confirmed after the
broker acknowledged (``accepted``, kept for the retention period). A failed publish releases the
claim so the client's retry can succeed.
"""

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from shared.models import Order

_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local record = cjson.decode(current)
if record['event_id'] == ARGV[1] and record['state'] == 'pending' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # new: publish it
    DUPLICATE = "duplicate"  # identical and already accepted
    CONFLICT = "conflict"  # same number, other content
    IN_FLIGHT = "in_flight"  # identical, another request is publishing it now


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    event_id: str
    customer_id: str


def order_digest(order: Order) -> str:
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


class OrderIdempotency:
    def __init__(self, redis: Redis, retention_s: int, pending_s: int = 60) -> None:
        self._redis = redis
        self._retention_s = retention_s
        self._pending_s = pending_s
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def key(order_no: str) -> str:
        return f"ingest:order:{order_no}"

    async def claim(self, orders: list[tuple[Order, str]]) -> list[Claim]:
        """Claim each (order, new event id) in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for order, event_id in orders:
            record = {
                "digest": order_digest(order),
                "event_id": event_id,
                "customer_id": order.customer.id,
                "state": "pending",
            }
            await self._claim(
                keys=[self.key(order.order_no)],
                args=[json.dumps(record), self._pending_s],
                client=pipe,
            )
        results = await pipe.execute()
        claims = []
        for (order, event_id), existing in zip(orders, results, strict=True):
            if existing is None:
                claims.append(Claim(ClaimOutcome.CLAIMED, event_id, order.customer.id))
                continue
            record = json.loads(existing)
            if record["digest"] != order_digest(order):
                outcome = ClaimOutcome.CONFLICT
            elif record["state"] == "pending":
                outcome = ClaimOutcome.IN_FLIGHT
            else:
                outcome = ClaimOutcome.DUPLICATE
            claims.append(Claim(outcome, record["event_id"], record["customer_id"]))
        return claims

    async def confirm(self, orders: list[tuple[Order, str]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for order, event_id in orders:
            record = {
                "digest": order_digest(order),
                "event_id": event_id,
                "customer_id": order.customer.id,
                "state": "accepted",
            }
            pipe.set(self.key(order.order_no), json.dumps(record), ex=self._retention_s)
        await pipe.execute()

    async def release(self, orders: list[tuple[Order, str]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for order, event_id in orders:
            await self._release(keys=[self.key(order.order_no)], args=[event_id], client=pipe)
        await pipe.execute()

    async def replace(self, order: Order, event_id: str) -> None:
        """An accepted update: later resends of the new content are its duplicates."""
        await self.confirm([(order, event_id)])

    async def customer_of(self, order_no: str) -> str | None:
        raw = await self._redis.get(self.key(order_no))
        return json.loads(raw)["customer_id"] if raw else None

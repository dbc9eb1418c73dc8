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

# One call per batch, not one per order: KEYS are the orders' keys, ARGV[1] the pending TTL,
# ARGV[2..] their records. Answers, per key, the record found (nothing when claimed now).
# All keys in one call: ingest's idempotency needs a single Redis (not a cluster).
_CLAIM = """
local found = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current then
    found[i] = current
  else
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
    found[i] = ''
  end
end
return found
"""
_CONFIRM = """
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS
"""
_RELEASE = """
local released = 0
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current then
    local record = cjson.decode(current)
    if record['event_id'] == ARGV[i] and record['state'] == 'pending' then
      released = released + redis.call('DEL', key)
    end
  end
end
return released
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
    digest: str


def order_digest(order: Order) -> str:
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


class OrderIdempotency:
    def __init__(self, redis: Redis, retention_s: int, pending_s: int = 60) -> None:
        self._redis = redis
        self._retention_s = retention_s
        self._pending_s = pending_s
        self._claim = redis.register_script(_CLAIM)
        self._confirm = redis.register_script(_CONFIRM)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def key(order_no: str) -> str:
        return f"ingest:order:{order_no}"

    async def claim(self, orders: list[tuple[Order, str]]) -> list[Claim]:
        """Claim each (order, new event id); one round trip for the whole batch."""
        if not orders:
            return []
        digests = [order_digest(order) for order, _ in orders]
        records = [
            _record(order, digest, event_id, "pending")
            for (order, event_id), digest in zip(orders, digests, strict=True)
        ]
        found = await self._claim(
            keys=[self.key(order.order_no) for order, _ in orders],
            args=[self._pending_s, *records],
        )
        claims = []
        for (order, event_id), digest, existing in zip(orders, digests, found, strict=True):
            if not existing:
                claims.append(Claim(ClaimOutcome.CLAIMED, event_id, order.customer.id, digest))
                continue
            record = json.loads(existing)
            if record["digest"] != digest:
                outcome = ClaimOutcome.CONFLICT
            elif record["state"] == "pending":
                outcome = ClaimOutcome.IN_FLIGHT
            else:
                outcome = ClaimOutcome.DUPLICATE
            claims.append(Claim(outcome, record["event_id"], record["customer_id"], digest))
        return claims

    async def confirm(self, accepted: list[tuple[Order, Claim]]) -> None:
        """Keep the records of acknowledged orders for the retention period."""
        if accepted:
            await self._confirm(
                keys=[self.key(order.order_no) for order, _ in accepted],
                args=[
                    self._retention_s,
                    *(
                        _record(order, claim.digest, claim.event_id, "accepted")
                        for order, claim in accepted
                    ),
                ],
            )

    async def release(self, failed: list[tuple[Order, Claim]]) -> None:
        """Drop the pending claims of orders Kafka did not take, so a retry can claim them."""
        if failed:
            await self._release(
                keys=[self.key(order.order_no) for order, _ in failed],
                args=[claim.event_id for _, claim in failed],
            )

    async def customer_of(self, order_no: str) -> str | None:
        raw = await self._redis.get(self.key(order_no))
        return json.loads(raw)["customer_id"] if raw else None


def _record(order: Order, digest: str, event_id: str, state: str) -> str:
    return json.dumps(
        {"digest": digest, "event_id": event_id, "customer_id": order.customer.id, "state": state}
    )

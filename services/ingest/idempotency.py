"""Idempotency by order number, in Redis: the same order twice is accepted once.

A claim is taken atomically before publishing (``pending``, short-lived) and confirmed after the
broker acknowledged (``accepted``, kept for the retention period). A failed publish releases the
claim so the client's retry can succeed.

A claim's record is JSON (``{"digest": ..., "event_id": ..., "customer_id": ..., "state":
...}``, ~325 bytes of Redis memory a claim, key and expiry included) or, read since the release
of 2026-11-27 afternoon and written since the next (``WRITE_COMPACT_CLAIMS``),
``state|event_id|digest|customer_id`` with the state's first letter and the digest's first 128
bits (~229 bytes). Claims are kept for the retention period (7 days by default), so at volume
they are most of Redis's memory (``docs/capacity.md``). Expand, then contract: a release that
wrote the compact form could not be rolled back to one that reads only JSON.

On one Redis node a batch is claimed in one script call over all its keys. On Redis Cluster a
script may only touch keys of one hash slot, so the keys are grouped by slot and each group is
one script call, all of them sent in one cluster pipeline (one round trip per node).
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from shared.errors import DependencyUnavailable
from shared.models import Identifier, Order
from shared.redis import REDIS_OUTAGE

# KEYS are the orders' keys, ARGV[1] the TTL, ARGV[2..] their records, in the same order.
# Answers, per key, the record found (nothing when claimed now).
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
# A record in either form (``ClaimRecord.parse``): JSON, or ``p|event_id|digest|customer``.
_RELEASE = """
local released = 0
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current then
    local event_id, pending
    if string.sub(current, 1, 1) == '{' then
      local record = cjson.decode(current)
      event_id, pending = record['event_id'], record['state'] == 'pending'
    else
      event_id, pending = string.match(current, '^.|([^|]*)|'), string.sub(current, 1, 1) == 'p'
    end
    if event_id == ARGV[i] and pending then
      released = released + redis.call('DEL', key)
    end
  end
end
return released
"""
# Whether claims are written in the compact form (read in either): since the release after the
# one that learnt to read it. False writes JSON, as before (the tests of reading it).
WRITE_COMPACT_CLAIMS = True
DIGEST_KEPT = 32  # hex digits of an order's digest a compact record keeps (128 bits)


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # new: publish it
    DUPLICATE = "duplicate"  # identical and already accepted
    CONFLICT = "conflict"  # same number, other content
    IN_FLIGHT = "in_flight"  # identical, another request is publishing it now


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """What a claim's record says: its state, the event that claimed it, the customer and
    the order's digest (or the digest's first ``DIGEST_KEPT`` hex digits)."""

    state: str  # "pending" or "accepted"
    event_id: str
    customer_id: str
    digest: str

    @classmethod
    def parse(cls, raw: str | bytes) -> "ClaimRecord":
        text = raw.decode() if isinstance(raw, bytes) else raw
        if text.startswith("{"):
            record = json.loads(text)
            return cls(record["state"], record["event_id"], record["customer_id"], record["digest"])
        state, event_id, digest, customer_id = text.split("|", 3)
        return cls(_STATES[state], event_id, customer_id, digest)

    def same_order(self, digest: str) -> bool:
        """Whether the order whose digest is ``digest`` is the one claimed."""
        return len(self.digest) >= DIGEST_KEPT and digest.startswith(self.digest)


_STATES = {"p": "pending", "a": "accepted"}


@dataclass(slots=True)  # one per order claimed: not frozen, as ``publishing.EncodedEvent``
class Claim:
    outcome: ClaimOutcome
    event_id: str
    customer_id: str
    digest: str


def order_digest(order: Order) -> str:
    return digest_of(order.model_dump_json().encode())


def digest_of(order_json: bytes) -> str:
    """The digest of an order from its JSON (``order.model_dump_json()``): kept in each claim
    for the retention period, so it must not change between releases."""
    return hashlib.sha256(order_json).hexdigest()


class OrderIdempotency:
    """The claims of order numbers, in Redis (one node or a cluster)."""

    def __init__(
        self, redis: "Redis | RedisCluster", retention_s: int, pending_s: int = 60
    ) -> None:
        self._redis = redis
        self._retention_s = retention_s
        self._pending_s = pending_s
        self._scripts = {text: redis.register_script(text) for text in (_CLAIM, _CONFIRM, _RELEASE)}

    @staticmethod
    def key(order_no: str) -> str:
        return f"ingest:order:{order_no}"

    async def claim(
        self, orders: Sequence[tuple[Order, str]], digests: Sequence[str] | None = None
    ) -> list[Claim]:
        """Claim each (order, new event id); one round trip for the whole batch. ``digests``
        are the orders' digests when the caller made them already."""
        if not orders:
            return []
        if digests is None:
            digests = [order_digest(order) for order, _ in orders]
        records = [
            _record(order.customer.id, digest, event_id, "pending")
            for (order, event_id), digest in zip(orders, digests, strict=True)
        ]
        keys = [self.key(order.order_no) for order, _ in orders]
        found = await self._run(_CLAIM, keys, records, head=[self._pending_s])
        claims = []
        for (order, event_id), digest, existing in zip(orders, digests, found, strict=True):
            if not existing:
                claims.append(Claim(ClaimOutcome.CLAIMED, event_id, order.customer.id, digest))
                continue
            record = ClaimRecord.parse(existing)
            if not record.same_order(digest):
                outcome = ClaimOutcome.CONFLICT
            elif record.state == "pending":
                outcome = ClaimOutcome.IN_FLIGHT
            else:
                outcome = ClaimOutcome.DUPLICATE
            claims.append(Claim(outcome, record.event_id, record.customer_id, digest))
        return claims

    async def confirm(self, accepted: list[tuple[Order, Claim]]) -> None:
        """Keep the records of acknowledged orders for the retention period."""
        if accepted:
            await self._run(
                _CONFIRM,
                [self.key(order.order_no) for order, _ in accepted],
                [
                    _record(order.customer.id, claim.digest, claim.event_id, "accepted")
                    for order, claim in accepted
                ],
                head=[self._retention_s],
            )

    async def release(self, failed: list[tuple[Order, Claim]]) -> None:
        """Drop the pending claims of orders Kafka did not take, so a retry can claim them."""
        if failed:
            await self._run(
                _RELEASE,
                [self.key(order.order_no) for order, _ in failed],
                [claim.event_id for _, claim in failed],
            )

    async def customer_of(self, order_no: str) -> str | None:
        try:
            raw = await self._redis.get(self.key(order_no))
        except REDIS_OUTAGE as error:
            raise _unavailable(error) from error
        return ClaimRecord.parse(raw).customer_id if raw else None

    async def _run(
        self, script: str, keys: list[str], per_key: list[str], head: Sequence[Any] = ()
    ) -> list[Any]:
        """Run ``script`` over ``keys`` (with one argument each after ``head``); answers the
        script's per-key results in the order of ``keys``, whatever the grouping by slot."""
        try:
            if not isinstance(self._redis, RedisCluster):
                answer = await self._scripts[script](keys=keys, args=[*head, *per_key])
                return list(answer) if isinstance(answer, list) else [answer] * len(keys)
            return await self._run_by_slot(script, keys, per_key, head)
        except REDIS_OUTAGE as error:
            raise _unavailable(error) from error

    async def _run_by_slot(
        self, script: str, keys: list[str], per_key: list[str], head: Sequence[Any]
    ) -> list[Any]:
        assert isinstance(self._redis, RedisCluster)
        by_slot: dict[int, list[int]] = defaultdict(list)
        for position, key in enumerate(keys):
            by_slot[key_slot(key.encode())].append(position)
        pipe = self._redis.pipeline()
        groups = list(by_slot.values())
        for positions in groups:
            pipe.execute_command(
                "EVAL",
                script,
                len(positions),
                *(keys[p] for p in positions),
                *head,
                *(per_key[p] for p in positions),
            )
        answers = await pipe.execute()
        results: list[Any] = [None] * len(keys)
        for positions, answer in zip(groups, answers, strict=True):
            values = answer if isinstance(answer, list) else [answer] * len(positions)
            for position, value in zip(positions, values, strict=True):
                results[position] = value
        return results


def _unavailable(error: BaseException) -> DependencyUnavailable:
    return DependencyUnavailable(
        "redis", f"Redis is unavailable ({type(error).__name__}); nothing was accepted, retry later"
    )


def _record(customer_id: Identifier, digest: str, event_id: str, state: str) -> str:
    """A claim's record: compact (``WRITE_COMPACT_CLAIMS``), else what ``json.dumps`` of its
    four fields gives, formatted directly. None needs escaping or holds a ``|``: a digest is
    hex, an event id a UUID, a state a word, and a customer id an ``Identifier`` (letters,
    digits and ``_ . : -``), so ``json.dumps`` of it is it quoted."""
    if WRITE_COMPACT_CLAIMS:
        return f"{state[0]}|{event_id}|{digest[:DIGEST_KEPT]}|{customer_id}"
    return (
        f'{{"digest": "{digest}", "event_id": "{event_id}", '
        f'"customer_id": "{customer_id}", "state": "{state}"}}'
    )

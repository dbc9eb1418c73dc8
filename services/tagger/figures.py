"""Per-customer figures in Redis, kept exact under at-least-once delivery.

Each order's contribution is applied by one Lua script (``figures.lua``) keyed by the order
number: applied at most once, reversed at most once (cancel, return), and the figures it saw
are stored with it, so a redelivered event sees exactly what the first delivery saw.
"""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from services.tagger.rules.facts import FiguresSnapshot

SECONDS_PER_DAY = 86_400
WINDOW_DAYS = 365
KEEP_RECENT_ORDERS = 100
CONTRIBUTION_TTL_S = 400 * SECONDS_PER_DAY  # longer than any Kafka retention a replay comes from
_SCRIPT = (Path(__file__).with_name("figures.lua")).read_text()


def to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_exact())


def from_cents(cents: int | float | str) -> Decimal:
    return Decimal(int(cents)) / 100


@dataclass(frozen=True, slots=True)
class Apply:
    customer_id: str
    order_no: str
    amount: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Reverse:
    customer_id: str
    order_no: str


@dataclass(frozen=True, slots=True)
class CustomerTotals:
    """The customer's live figures (what ``figures rebuild`` must reproduce)."""

    order_count: int
    lifetime_spend: Decimal
    first_order_at: float | None
    last_order_at: float | None
    spend_by_day: dict[int, Decimal]
    recent_orders: dict[str, float]


def keys_of(customer_id: str, order_no: str = "") -> list[str]:
    tag = f"ot:{{{customer_id}}}"
    return [f"{tag}:order:{order_no}", f"{tag}:totals", f"{tag}:by-day", f"{tag}:recent"]


def snapshot_from_json(raw: bytes | str) -> FiguresSnapshot:
    return FiguresSnapshot.from_record(json.loads(raw))


class CustomerFigures:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)

    async def apply(self, operations: Sequence[Apply | Reverse]) -> list[FiguresSnapshot | bool]:
        """Run the operations in order in one round trip (a pipeline of script calls).

        An ``Apply`` answers with the figures before that order; a ``Reverse`` with whether it
        reversed anything now.
        """
        if not operations:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for op in operations:
            if isinstance(op, Apply):
                ts = op.created_at.timestamp()
                args: list[Any] = [
                    "apply",
                    op.order_no,
                    to_cents(op.amount),
                    repr(ts),
                    int(ts // SECONDS_PER_DAY),
                    WINDOW_DAYS,
                    KEEP_RECENT_ORDERS,
                    CONTRIBUTION_TTL_S,
                ]
            else:
                args = ["reverse", op.order_no]
            await self._script(keys=keys_of(op.customer_id, op.order_no), args=args, client=pipe)
        results = await pipe.execute()
        return [
            snapshot_from_json(result) if isinstance(op, Apply) else bool(result)
            for op, result in zip(operations, results, strict=True)
        ]

    async def totals(self, customer_id: str) -> CustomerTotals:
        _, totals_key, by_day_key, recent_key = keys_of(customer_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(totals_key)
        pipe.hgetall(by_day_key)
        pipe.zrange(recent_key, 0, -1, withscores=True)
        totals, by_day, recent = await pipe.execute()
        return CustomerTotals(
            order_count=int(totals.get(b"count", 0)),
            lifetime_spend=from_cents(totals.get(b"spend", 0)),
            first_order_at=float(totals[b"first_at"]) if b"first_at" in totals else None,
            last_order_at=float(totals[b"last_at"]) if b"last_at" in totals else None,
            spend_by_day={
                int(day): from_cents(cents) for day, cents in by_day.items() if int(cents) != 0
            },
            recent_orders={member.decode(): float(score) for member, score in recent},
        )


async def rebuild_figures(
    redis: Redis, orders: AsyncIterator[dict[str, Any]], chunk: int = 500
) -> int:
    """Recompute every customer's figures from the stored orders (MongoDB is the source of
    truth). Run with the taggers stopped. Returns the number of orders read."""
    async for key in redis.scan_iter(match="ot:{*", count=1000):
        await redis.delete(key)
    count = 0
    pipe = redis.pipeline(transaction=False)
    async for document in orders:
        _rebuild_one(pipe, document)
        count += 1
        if count % chunk == 0:
            await pipe.execute()
    await pipe.execute()
    # keep the newest orders only, as the live script does
    async for key in redis.scan_iter(match="ot:{*}:recent", count=1000):
        await redis.zremrangebyrank(key, 0, -(KEEP_RECENT_ORDERS + 1))
    return count


def _rebuild_one(pipe: Any, document: dict[str, Any]) -> None:
    order = document["order"]
    contribution, totals, by_day, recent = keys_of(document["customer_id"], document["order_no"])
    ts = datetime.fromisoformat(order["created_at"]).timestamp()
    day = int(ts // SECONDS_PER_DAY)
    cents = to_cents(Decimal(order["pricing"]["total"]))
    state = "reversed" if document.get("contribution_reversed") else "applied"
    pipe.hset(
        contribution,
        mapping={
            "snapshot": json.dumps(document["figures"]),
            "state": state,
            "cents": cents,
            "day": day,
            "ts": repr(ts),
        },
    )
    pipe.expire(contribution, CONTRIBUTION_TTL_S)
    # first/last order times count every order ever placed, as the live script does
    pipe.eval(_MIN_MAX_SCRIPT, 1, totals, repr(ts))
    if state == "applied":
        pipe.hincrby(totals, "count", 1)
        pipe.hincrby(totals, "spend", cents)
        pipe.hincrby(by_day, str(day), cents)
        pipe.zadd(recent, {document["order_no"]: ts})


_MIN_MAX_SCRIPT = """
local ts = tonumber(ARGV[1])
local first = redis.call('HGET', KEYS[1], 'first_at')
if not first or ts < tonumber(first) then redis.call('HSET', KEYS[1], 'first_at', ARGV[1]) end
local last = redis.call('HGET', KEYS[1], 'last_at')
if not last or ts > tonumber(last) then redis.call('HSET', KEYS[1], 'last_at', ARGV[1]) end
return 1
"""

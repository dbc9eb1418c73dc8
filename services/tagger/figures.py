"""Per-customer figures in Redis, kept exact under at-least-once delivery.

Each order's contribution is applied by one Lua script (``figures.lua``) keyed by the order
number: applied at most once, reversed at most once (cancel, return), and the figures it saw
are stored with it, so a redelivered event sees exactly what the first delivery saw.

The figures are a cache of MongoDB. Epoch markers, written when they were last built, say
they are loaded: one per hash slot, each a key of its own slot, so the script checks the
customer's own slot's marker in the same call, and on a Redis Cluster a master that lost its
data (while the others kept theirs) is seen on every slot it serves. The script refuses to count
without the marker, and a check at the head of every batch (one slot of every master) refuses
figures that predate a restart of any master (a restart from an append-only file can lose the
last second of writes, a promoted replica the last unreplicated ones). Either way the caller
rebuilds them from MongoDB through the same script (or waits while another process does, under
a lock) before tagging goes on.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Enum
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

from services.tagger.figure_keys import (
    FIGURE_KEYS,
    KEEP_RECENT_ORDERS,
    REBUILD_LOCK_KEY,
    SINGLE_EPOCH_KEY,
    Apply,
    CustomerTotals,
    Reverse,
    contribution_args,
    epoch_key,
    epoch_keys,
    keys_of,
    order_items,
    script_keys,
    slot_of,
    slot_tags,
)
from services.tagger.rules.facts import FiguresSnapshot
from shared.money import from_cents, to_cents
from shared.stored_order import figures_record, order_created_at
from shared.tasks import cancel_and_wait

log = structlog.get_logger("tagger.figures")

_SCRIPT = (Path(__file__).with_name("figures.lua")).read_text()
LOCK_TTL_MS = 30_000
REBUILD_CHUNK = 500
LOCK_LOST = "the figures rebuild lock expired; another process rebuilds"

FIGURES_REBUILDS = Counter(
    "ordertag_figures_rebuilds_total",
    "Rebuilds of the customer figures from MongoDB",
    ["reason"],
)
FIGURES_STATE = Enum(
    "ordertag_figures_state",
    "The customer figures as this process last saw them",
    states=["unknown", "loaded", "lost", "waiting", "rebuilding"],
)

# Head of every batch: the figures are loaded, and by the Redis server now running (its run id
# changes on restart). On a mismatch the marker is dropped, so every process rebuilds.
_EPOCH_CHECK = """
local marker = redis.call('HMGET', KEYS[1], 'id', 'run_id')
if not marker[1] then return redis.error_reply('NOEPOCH missing') end
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if marker[2] ~= run_id then
  redis.call('DEL', KEYS[1])
  return redis.error_reply('NOEPOCH restarted')
end
return marker[1]
"""
# Every slot's marker at once, on one node (not a cluster: the keys span every slot).
_MARKERS_WRITE = """
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
for _, key in ipairs(KEYS) do
  redis.call('HSET', key, 'id', ARGV[1], 'built_at', ARGV[2], 'orders', ARGV[3], 'run_id', run_id)
end
return run_id
"""
# One customer's figures with its slot's epoch marker, at one instant (one slot: cluster-safe);
# of the recent orders the newest ARGV[1] (``figures.lua`` keeps more: a margin for reversals).
_READ = """
if redis.call('EXISTS', KEYS[6]) == 0 then
  return redis.error_reply('NOEPOCH missing: customer figures not loaded; rebuild from MongoDB')
end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('ZRANGE', KEYS[3], -tonumber(ARGV[1]), -1, 'WITHSCORES'),
        redis.call('HGETALL', KEYS[4]), redis.call('HGETALL', KEYS[5])}
"""
_LOCK_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_LOCK_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

OrderDocuments = AsyncIterable[dict[str, Any]]
FiguresRedis = Redis | RedisCluster


class FiguresLost(Exception):
    """Redis does not hold the customer figures (flushed, or restarted and perhaps short of its
    last writes): rebuild them from MongoDB before counting another order."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"customer figures not loaded ({reason}); rebuild from MongoDB")
        self.reason = reason


class RebuildLockLost(Exception):
    """The rebuild lock expired under a slow rebuild and another process took it over."""


def _lost_reason(error: ResponseError) -> str | None:
    """``missing``/``restarted``/... for the script's NOEPOCH refusal, None for other errors."""
    words = str(error).split()
    if not words or words[0] != "NOEPOCH":
        return None
    return words[1].rstrip(":") if len(words) > 1 else "missing"


def snapshot_from_json(raw: bytes | str) -> FiguresSnapshot:
    return FiguresSnapshot.from_record(json.loads(raw))


class CustomerFigures:
    def __init__(self, redis: FiguresRedis) -> None:
        # the slots' hash tags, found once per process as it starts (~0.1-0.3 s of CPU), not
        # in the first batch it tags
        slot_tags()
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)
        self._epoch_check = redis.register_script(_EPOCH_CHECK)
        self._read = redis.register_script(_READ)
        self._markers_write = redis.register_script(_MARKERS_WRITE)
        self._lock_renew = redis.register_script(_LOCK_RENEW)
        self._lock_release = redis.register_script(_LOCK_RELEASE)

    async def apply(self, operations: Sequence[Apply | Reverse]) -> list[FiguresSnapshot | bool]:
        """Run the operations in order in one round trip (a pipeline of script calls).

        An ``Apply`` answers with the figures before that order; a ``Reverse`` with whether it
        reversed anything now. Raises ``FiguresLost`` when the figures are not loaded.
        """
        _, results = await self.apply_in_epoch(operations)
        return results

    async def apply_in_epoch(
        self, operations: Sequence[Apply | Reverse]
    ) -> tuple[str, list[FiguresSnapshot | bool]]:
        """``apply``, and the epoch the figures were in: if the epoch has changed by the time
        the orders are stored, a rebuild may have missed them (``epoch()`` tells).

        The head check (one marker of every master) runs first, in a round trip of its own:
        a master found restarted refuses the whole batch before any order is counted on the
        masters that kept their data (the script checks only its own slot's marker)."""
        epoch = await self._check_every_master()
        if not operations:
            return epoch, []

        async def calls(pipe: Any) -> None:
            for op in operations:
                if isinstance(op, Apply):
                    cents = to_cents(op.amount)
                    args = [
                        "apply",
                        *contribution_args(op.order_no, cents, _ts(op), op.category_cents, op.skus),
                    ]
                else:
                    args = ["reverse", op.order_no]
                keys = script_keys(op.customer_id, op.order_no)
                await self._queue(pipe, self._script, keys, args)

        results = _checked(await self._pipelined(calls))
        return epoch, [
            snapshot_from_json(result) if isinstance(op, Apply) else bool(result)
            for op, result in zip(operations, results, strict=True)
        ]

    async def read(self, customer_ids: Sequence[str]) -> list[list[list[bytes]]]:
        """Each customer's stored figures (totals, by-day, recent orders with their scores,
        by-category, products; flat field/value lists), each read in one script call with its
        slot's epoch marker. Raises ``FiguresLost`` when a customer's slot has no marker
        (flushed, the master lost its data, or a rebuild under way): empty figures would take
        every tag away from the customers read."""

        async def calls(pipe: Any) -> None:
            for customer_id in customer_ids:
                _, *figure_keys = keys_of(customer_id)
                marker = epoch_key(slot_of(customer_id))
                keys = [*figure_keys, marker]
                await self._queue(pipe, self._read, keys, [KEEP_RECENT_ORDERS])

        return _checked(await self._pipelined(calls))

    async def epoch(self) -> str | None:
        """The id of the figures' current epoch (None: not loaded on some master, or a
        rebuild under way)."""
        heads = await self._head_slots()

        async def calls(pipe: Any) -> None:
            for slot in heads:
                pipe.hget(epoch_key(slot), "id")

        return _one_epoch(await self._pipelined(calls))

    async def _head_slots(self) -> list[int]:
        """One slot of every master (the lowest it serves): its marker stands for the master
        at the head of a batch. One node serves every slot."""
        if not isinstance(self._redis, RedisCluster):
            return [0]
        slots = self._redis.nodes_manager.slots_cache
        if not slots:
            await self._redis.initialize()
        first: dict[str, int] = {}
        for slot in sorted(slots):
            first.setdefault(slots[slot][0].name, slot)
        return sorted(first.values())

    async def _write_markers(self, markers: list[str], marker: dict[str, str]) -> None:
        """Every slot's marker, naming the run of the server that holds it: a master restarted
        since (run id changed, perhaps short of its last writes) is refused at the head
        check. One node: one script call; a Redis Cluster: one HSET per slot."""
        if not isinstance(self._redis, RedisCluster):
            await self._markers_write(keys=markers, args=[*marker.values()])
            return
        await self._head_slots()  # the slot map, loaded
        runs = {}
        for node in self._redis.get_primaries():
            info = await self._redis.info("server", target_nodes=node)
            runs[node.name] = str(info["run_id"] if "run_id" in info else info[node.name]["run_id"])
        slots = self._redis.nodes_manager.slots_cache
        async with self._redis.pipeline(transaction=False) as pipe:
            for slot, key in enumerate(markers):
                fields = [*(x for pair in marker.items() for x in pair)]
                pipe.hset(key, items=[*fields, "run_id", runs[slots[slot][0].name]])
            await pipe.execute()

    async def _queue(
        self, pipe: Any, script: AsyncScript, keys: list[str], args: Sequence[Any] = ()
    ) -> None:
        """A script call queued on a ``_pipelined`` pipeline: EVALSHA by hand (a Redis Cluster
        pipeline refuses ``Script`` objects, and on one node they cost a SCRIPT EXISTS round
        trip per pipeline); ``_pipelined`` loads the scripts where Redis does not have them."""
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _pipelined(self, calls: Callable[[Any], Awaitable[None]]) -> list[Any]:
        """The calls in one pipeline (errors as results). Script calls go as bare EVALSHA: a
        Redis without the scripts (new, restarted, flushed; on a cluster, any master) gets
        them and the calls run once more (every script call is idempotent)."""
        for attempt in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:  # reset even on errors
                await calls(pipe)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in replies):
                await self._load_scripts()
                continue
            break
        return replies

    async def _load_scripts(self) -> None:
        """SCRIPT LOAD of every script (on a Redis Cluster: on every master)."""
        for script in (self._script, self._epoch_check, self._read):
            await self._redis.script_load(script.script)

    async def ensure_loaded(
        self, orders: Callable[[], OrderDocuments], reason: str = "missing"
    ) -> None:
        """Return once the figures are loaded: rebuild them from ``orders()`` (every stored
        order) under the rebuild lock, or wait while another process holds it."""
        waited = 0.0
        backoff = 0.05
        while True:
            try:
                await self._check_every_master()
                FIGURES_STATE.state("loaded")
                return
            except FiguresLost:
                pass
            token = uuid.uuid4().hex
            if await self._redis.set(REBUILD_LOCK_KEY, token, nx=True, px=LOCK_TTL_MS):
                try:
                    await self._rebuild_locked(orders(), token, reason)
                finally:
                    await self._lock_release(keys=[REBUILD_LOCK_KEY], args=[token])
                return
            if waited == 0:
                log.warning("figures_rebuild_waiting", reason=reason)
            FIGURES_STATE.state("waiting")
            await asyncio.sleep(backoff)  # another process rebuilds: poll its lock with backoff
            waited += backoff
            backoff = min(backoff * 2, 1.0)

    async def _check_every_master(self) -> str:
        """The head-of-batch check: every master's marker is there, from the master's current
        run, and all name one epoch (its id); else ``FiguresLost``."""
        heads = await self._head_slots()

        async def calls(pipe: Any) -> None:
            for slot in heads:
                await self._queue(pipe, self._epoch_check, [epoch_key(slot)])

        epoch = _one_epoch(_checked(await self._pipelined(calls)))
        if epoch is None:  # a rebuild wrote some masters' markers, not yet all
            FIGURES_STATE.state("lost")
            raise FiguresLost("mixed")
        return epoch

    async def rebuild(self, orders: OrderDocuments) -> int:
        """Recompute every customer's figures from the stored orders (MongoDB is the source of
        truth); taggers pause meanwhile. Returns the number of orders read."""
        token = uuid.uuid4().hex
        backoff = 0.05
        while not await self._redis.set(REBUILD_LOCK_KEY, token, nx=True, px=LOCK_TTL_MS):
            await asyncio.sleep(backoff)  # a rebuild is under way elsewhere: take the next turn
            backoff = min(backoff * 2, 1.0)
        try:
            return await self._rebuild_locked(orders, token, "requested")
        finally:
            await self._lock_release(keys=[REBUILD_LOCK_KEY], args=[token])

    async def reset(self) -> None:
        """Start from no figures at all, loaded (a scratch Redis of a benchmark)."""
        await self.rebuild(_no_orders())

    async def _rebuild_locked(self, orders: OrderDocuments, token: str, reason: str) -> int:
        FIGURES_STATE.state("rebuilding")
        log.warning("figures_rebuild_started", reason=reason)
        started = time.monotonic()
        count = 0
        async with self._holding(token) as lost:  # renewed from the first step to the last
            # Without the markers no process counts an order while the figures are rebuilt.
            await self._load_scripts()
            markers = epoch_keys()
            await self._redis.unlink(*markers)  # (split by slot on a Redis Cluster)
            await self._redis.unlink(SINGLE_EPOCH_KEY)
            stale: list[bytes] = []
            async for key in self._redis.scan_iter(match=FIGURE_KEYS, count=1000):
                stale.append(key)
                if len(stale) >= REBUILD_CHUNK:
                    await self._redis.unlink(*stale)
                    stale.clear()
            if stale:
                await self._redis.unlink(*stale)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    async for document in orders:
                        await self._restore(pipe, document)
                        count += 1
                        if count % REBUILD_CHUNK == 0:
                            await pipe.execute()
                            if lost.is_set():
                                raise RebuildLockLost(LOCK_LOST)
                    await pipe.execute()
            finally:
                # A rebuild cut short (a fault, a batch's timeout) closes its MongoDB cursor:
                # the server holds a sorted read's whole result until then (the local server
                # ran out of heap on abandoned rebuilds in the chaos run).
                close = getattr(orders, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(close())
            await self._renew(token)
            # each marker names the run of the server holding it: a master restarted since
            # (run id changed, perhaps short of its last writes) is refused at the head check
            marker = {"id": uuid.uuid4().hex, "built_at": repr(time.time()), "orders": str(count)}
            await self._write_markers(markers, marker)
        FIGURES_REBUILDS.labels(reason).inc()
        FIGURES_STATE.state("loaded")
        seconds = round(time.monotonic() - started, 3)
        log.warning("figures_rebuilt", reason=reason, orders=count, seconds=seconds)
        return count

    async def _renew(self, token: str) -> None:
        if not await self._lock_renew(keys=[REBUILD_LOCK_KEY], args=[token, LOCK_TTL_MS]):
            raise RebuildLockLost(LOCK_LOST)

    @contextlib.asynccontextmanager
    async def _holding(self, token: str) -> AsyncIterator[asyncio.Event]:
        """Renew the rebuild lock every third of its lifetime for as long as the rebuild runs,
        however long the store takes to answer (the first sorted batch of a large store took
        longer than the whole lifetime on a loaded machine); the event is set if another process
        holds it now."""
        lost = asyncio.Event()

        async def renew() -> None:
            while not lost.is_set():
                await asyncio.sleep(LOCK_TTL_MS / 3000)
                try:
                    held = await self._lock_renew(
                        keys=[REBUILD_LOCK_KEY], args=[token, LOCK_TTL_MS]
                    )
                except Exception:  # Redis away: the rebuild's own writes fail and say so
                    log.warning("figures_rebuild_lock_renewal_failed", exc_info=True)
                    continue
                if not held:
                    lost.set()

        renewing = asyncio.create_task(renew(), name="figures-rebuild-lock")
        try:
            yield lost
        finally:
            await cancel_and_wait([renewing])

    async def _restore(self, pipe: Any, document: dict[str, Any]) -> None:
        order = document["order"]
        ts = order_created_at(document).timestamp()
        cents = to_cents(Decimal(order["pricing"]["total"]))
        state = "reversed" if document.get("contribution_reversed") else "applied"
        category_cents, skus = order_items(order)
        args = [
            "restore",
            *contribution_args(document["order_no"], cents, ts, category_cents, skus),
            json.dumps(figures_record(document["figures"])),
            state,
        ]
        keys = script_keys(document["customer_id"], document["order_no"])
        if isinstance(self._redis, RedisCluster):
            await self._queue(pipe, self._script, keys, args)
        else:  # a rebuild's pipeline raises on errors: the Script loads itself if it must
            await self._script(keys=keys, args=args, client=pipe)

    async def totals(self, customer_id: str) -> CustomerTotals:
        _, totals_key, by_day_key, recent_key, *_ = keys_of(customer_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(totals_key)
            pipe.hgetall(by_day_key)
            pipe.zrange(recent_key, -KEEP_RECENT_ORDERS, -1, withscores=True)  # as read
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


def _checked(replies: list[Any]) -> list[Any]:
    """The replies, or ``FiguresLost`` for a NOEPOCH refusal (any other error raised too)."""
    for reply in replies:
        if isinstance(reply, ResponseError) and (reason := _lost_reason(reply)):
            FIGURES_STATE.state("lost")
            raise FiguresLost(reason)
        if isinstance(reply, Exception):
            raise reply
    return replies


def _one_epoch(replies: Sequence[Any]) -> str | None:
    """The epoch id when every marker read holds the same one."""
    ids = {r.decode() if isinstance(r, bytes) else r for r in replies}
    if len(ids) != 1 or None in ids:
        return None
    return str(ids.pop())


async def _no_orders() -> AsyncIterator[dict[str, Any]]:
    return
    yield


def _ts(op: Apply) -> float:
    return op.created_at.timestamp()


async def rebuild_figures(redis: FiguresRedis, orders: OrderDocuments) -> int:
    """Recompute every customer's figures from the stored orders (``ordertag figures rebuild``)."""
    return await CustomerFigures(redis).rebuild(orders)

"""Large tag changes as jobs: progress in MongoDB, resumable after a restart, each order changed
exactly once (the job's change to an order has a fixed event id the order remembers).

A job runs in one process at a time, whichever replica holds its lease (owner and expiry in
the job's document, renewed with every chunk of progress). A replica that dies stops renewing;
once the lease has expired, the next ``resume_all`` of any replica takes the job over from its
last recorded chunk. Progress moves only while the lease is still held (compare-and-set on the
owner and the last order), so a replica that lost its lease while stalled counts nothing twice.
Transient errors (MongoDB or Kafka briefly down) are retried with backoff; only a permanent
error fails the job, with its reason.
"""

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import stamina
import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure

from services.tagger.editing import TagEditing
from services.tagger.manual import ManualChange
from services.tagger.outcomes import EditOutcome
from services.tagger.queries import OrderFilter
from services.tagger.tagging import WriteConflictsPersist
from shared.tasks import cancel_and_wait

if TYPE_CHECKING:
    from services.tagger.rule_activation import Backfill

log = structlog.get_logger("tagger.jobs")
CHUNK = 200
LEASE = timedelta(seconds=30)
NO_LEASE = datetime(1970, 1, 1, tzinfo=UTC)
BACKFILL_KIND = "rules_backfill"  # re-derive tags under a rule version (rule_activation.py)
DIFF_KIND = "rules_diff"  # a candidate rule set against stored orders (rule_diff_job.py)
# One chunk of a job: the job's document and the chunk's order numbers in, orders changed out
ChunkWork = Callable[[dict[str, Any], list[str]], Awaitable[int]]
# Records a run's progress: up to which order number, orders processed and changed since the
# last call, and the run's own state to keep with it (all at once, while the lease is held)
Checkpoint = Callable[[str, int, int, dict[str, Any]], Awaitable[None]]
# A job that walks the orders itself (not chunk by chunk): the job's document and its checkpoint
JobRun = Callable[[dict[str, Any], Checkpoint], Awaitable[None]]
TRANSIENT_ERRORS = (
    AutoReconnect,
    ConnectionFailure,
    KafkaConnectionError,
    KafkaTimeoutError,
    WriteConflictsPersist,
    ConnectionError,
    TimeoutError,
)


class LeaseLost(Exception):
    """Another replica holds the job now (this one stalled past its lease)."""


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Jobs:
    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        editing: TagEditing | None,
        *,
        owner: str | None = None,
        lease: timedelta = LEASE,
        backfill: ChunkWork | None = None,
        runs: Mapping[str, JobRun] | None = None,
    ) -> None:
        self.jobs = database["tag_jobs"]
        self.orders = database["orders"]
        self.catalog = database["tag_catalog"]
        self._editing = editing
        self._owner = owner or replica_name()
        self._lease = lease
        self._running: dict[str, asyncio.Task[None]] = {}
        self._backfill = backfill  # None: this replica leaves rule backfills to others
        self._runs = dict(runs or {})  # kinds that walk the orders themselves, by kind

    async def ensure_indexes(self) -> None:
        await self.jobs.create_index([("job_id", ASCENDING)], unique=True)

    async def start(
        self,
        kind: str,
        which: OrderFilter,
        change: ManualChange,
        total: int,
        after: dict[str, Any] | None = None,
    ) -> str:
        """Record (and, on a jobs replica, start) a manual tag change of the orders of ``which``;
        ``after`` says what to do once every order is changed."""
        spec: dict[str, Any] = {"add": list(change.add), "remove": list(change.remove)}
        spec |= {"by": change.by, "reason": change.reason, "role": change.role}
        return await self._record(kind, which, total, {"after": after or {}, "change": spec})

    async def start_backfill(self, which: OrderFilter, backfill: "Backfill", total: int) -> str:
        """Record (and, on a jobs replica, start) a job re-deriving the tags of the orders of
        ``which`` under a rule version."""
        return await self._record(BACKFILL_KIND, which, total, {"backfill": backfill.to_document()})

    async def _record(self, kind: str, which: OrderFilter, total: int, work: dict[str, Any]) -> str:
        """A new job with no progress and a free lease: whichever replica runs jobs takes it."""
        job_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        await self.jobs.insert_one(
            {
                "job_id": job_id,
                "kind": kind,
                # the filter is stored as itself, not as a MongoDB query ($-keys are not storable)
                "filter": which.model_dump(mode="json"),
                "status": "running",
                "total": total,
                "processed": 0,
                "changed": 0,
                "last_order_no": "",
                **work,
                "lease_owner": None,
                "lease_until": NO_LEASE,
                "created_at": now,
                "updated_at": now,
            }
        )
        self._spawn(job_id)
        return job_id

    async def start_run(self, kind: str, total: int, spec: dict[str, Any]) -> str:
        """Record (and, on a jobs replica, start) a job of a kind in ``runs``; ``spec`` is what
        the run needs to know, kept in the job's document."""
        job_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        await self.jobs.insert_one(
            {
                **spec,
                "job_id": job_id,
                "kind": kind,
                "status": "running",
                "total": total,
                "processed": 0,
                "changed": 0,
                "last_order_no": "",
                "lease_owner": None,
                "lease_until": NO_LEASE,
                "created_at": now,
                "updated_at": now,
            }
        )
        self._spawn(job_id)
        return job_id

    async def running_backfill(self) -> str | None:
        job = await self.jobs.find_one({"status": "running", "kind": BACKFILL_KIND}, {"job_id": 1})
        return None if job is None else str(job["job_id"])

    async def resume_all(self) -> int:
        """Take over the running jobs nobody holds (left by a stopped or dead replica, or
        recorded by a process that does not run jobs); call it periodically."""
        query: dict[str, Any] = {"status": "running", "lease_until": {"$lt": datetime.now(UTC)}}
        cannot = [] if self._backfill is not None else [BACKFILL_KIND]
        cannot += [kind for kind in (DIFF_KIND,) if kind not in self._runs]
        if cannot:
            query["kind"] = {"$nin": cannot}
        free = await self.jobs.find(query, {"job_id": 1}).to_list(None)
        for job in free:
            self._spawn(job["job_id"])
        return len(free)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self.jobs.find_one(
            {"job_id": job_id}, {"_id": 0, "lease_owner": 0, "lease_until": 0}
        )

    def _spawn(self, job_id: str) -> None:
        if job_id not in self._running or self._running[job_id].done():
            self._running[job_id] = asyncio.create_task(self._run(job_id))

    async def _claim(self, job_id: str) -> dict[str, Any] | None:
        """The job, if this replica now holds its lease (it was free, expired or ours)."""
        now = datetime.now(UTC)
        return await self.jobs.find_one_and_update(
            {
                "job_id": job_id,
                "status": "running",
                "$or": [{"lease_until": {"$lt": now}}, {"lease_owner": self._owner}],
            },
            {"$set": {"lease_owner": self._owner, "lease_until": now + self._lease}},
            return_document=ReturnDocument.AFTER,
        )

    async def _run(self, job_id: str) -> None:
        try:
            async for attempt in stamina.retry_context(
                on=TRANSIENT_ERRORS, attempts=None, timeout=None, wait_max=10.0
            ):
                with attempt:
                    await self._work(job_id)
        except LeaseLost:
            log.warning("job_lease_lost", job_id=job_id, owner=self._owner)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("job_failed", job_id=job_id)
            await self._settle(job_id, "failed", error=str(error)[:500])

    async def _work(self, job_id: str) -> None:
        """From the last recorded chunk to the end; every chunk is applied (idempotently, so a
        chunk interrupted before its progress was recorded is applied again harmlessly), then
        recorded while the lease is still held."""
        job = await self._claim(job_id)
        if job is None:
            return  # done, failed, or another replica holds it
        log.info("job_running", job_id=job_id, owner=self._owner, after=job["last_order_no"])
        last = job["last_order_no"]
        if job["kind"] in self._runs:

            async def checkpoint(
                upto: str, processed: int, changed: int, state: dict[str, Any]
            ) -> None:
                nonlocal last
                await self._record_progress(job_id, last, upto, processed, changed, state)
                last = upto

            await self._runs[job["kind"]](job, checkpoint)
            await self._finish(job)
            return
        work = self._chunk_work(job)
        which = OrderFilter.model_validate(job["filter"]).to_mongo()
        while True:
            query = {"$and": [which, {"order_no": {"$gt": last}}]}
            chunk = (
                await self.orders.find(query, {"order_no": 1})
                .sort("order_no", ASCENDING)
                .limit(CHUNK)
                .to_list(None)
            )
            if not chunk:
                break
            order_nos = [doc["order_no"] for doc in chunk]
            changed = await work(job, order_nos)
            await self._record_progress(job_id, last, order_nos[-1], len(order_nos), changed)
            last = order_nos[-1]
        await self._finish(job)

    def _chunk_work(self, job: dict[str, Any]) -> ChunkWork:
        if job["kind"] == BACKFILL_KIND:
            if self._backfill is None:
                raise RuntimeError("a rule backfill reached a replica that cannot run one")
            return self._backfill
        editing = self._editing
        if editing is None:
            raise RuntimeError("a tag change reached a replica that cannot edit tags")
        spec = job["change"]
        change = ManualChange(
            tuple(spec["add"]), tuple(spec["remove"]), spec["by"], spec["reason"], spec.get("role")
        )

        async def manual(job: dict[str, Any], order_nos: list[str]) -> int:
            results = await editing.change(order_nos, change, f"job:{job['job_id']}")
            return sum(r.outcome is EditOutcome.CHANGED for r in results.values())

        return manual

    async def _record_progress(
        self,
        job_id: str,
        previous: str,
        last: str,
        processed: int,
        changed: int,
        state: dict[str, Any] | None = None,
    ) -> None:
        now = datetime.now(UTC)
        moved = await self.jobs.update_one(
            {"job_id": job_id, "lease_owner": self._owner, "last_order_no": previous},
            {
                "$set": {
                    **(state or {}),
                    "last_order_no": last,
                    "lease_until": now + self._lease,
                    "updated_at": now,
                },
                "$inc": {"processed": processed, "changed": changed},
            },
        )
        if moved.matched_count == 0:
            raise LeaseLost(job_id)

    async def _finish(self, job: dict[str, Any]) -> None:
        after = job.get("after") or {}
        if after.get("delete_catalog_tag"):  # rename / merge: the old name leaves the catalog
            await self.catalog.delete_one({"name": after["delete_catalog_tag"]})
        await self._settle(job["job_id"], "done")
        log.info("job_done", job_id=job["job_id"], kind=job["kind"])

    async def _settle(self, job_id: str, status: str, **fields: Any) -> None:
        """End the job as ``status`` while this replica still holds its lease (one that lost
        the lease leaves the job to its new holder)."""
        await self.jobs.update_one(
            {"job_id": job_id, "lease_owner": self._owner},
            {"$set": {"status": status, "updated_at": datetime.now(UTC), **fields}},
        )

    async def stop(self) -> None:
        """Stop working and free the leases held, so another replica takes over at once."""
        tasks = list(self._running.values())
        await cancel_and_wait(tasks)
        if tasks:
            try:
                await self.jobs.update_many(
                    {"status": "running", "lease_owner": self._owner},
                    {"$set": {"lease_until": NO_LEASE}},
                )
            except Exception:  # MongoDB down: the leases expire by themselves
                log.warning("job_leases_not_freed", owner=self._owner, exc_info=True)

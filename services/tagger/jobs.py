"""Large tag changes as jobs: progress in MongoDB, resumable after a restart, each order changed
at most once (the job's change to an order has a fixed event id the order remembers)."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.editing import TagEditing
from services.tagger.manual import ManualChange
from services.tagger.outcomes import EditOutcome
from services.tagger.queries import OrderFilter

log = structlog.get_logger("tagger.jobs")
CHUNK = 200


class Jobs:
    def __init__(self, database: AsyncDatabase[dict[str, Any]], editing: TagEditing) -> None:
        self.jobs = database["tag_jobs"]
        self.orders = database["orders"]
        self.catalog = database["tag_catalog"]
        self._editing = editing
        self._running: dict[str, asyncio.Task[None]] = {}

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
        job_id = uuid.uuid4().hex
        await self.jobs.insert_one(
            {
                # the filter is stored as itself, not as a MongoDB query ($-keys are not storable)
                "job_id": job_id,
                "kind": kind,
                "filter": which.model_dump(mode="json"),
                "status": "running",
                "total": total,
                "processed": 0,
                "changed": 0,
                "last_order_no": "",
                "after": after or {},
                "change": {
                    "add": list(change.add),
                    "remove": list(change.remove),
                    "by": change.by,
                    "reason": change.reason,
                },
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            }
        )
        self._spawn(job_id)
        return job_id

    async def resume_all(self) -> int:
        """Continue the jobs a stopped process left running."""
        running = await self.jobs.find({"status": "running"}, {"job_id": 1}).to_list(None)
        for job in running:
            self._spawn(job["job_id"])
        return len(running)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self.jobs.find_one({"job_id": job_id}, {"_id": 0})

    def _spawn(self, job_id: str) -> None:
        if job_id not in self._running or self._running[job_id].done():
            self._running[job_id] = asyncio.create_task(self._run(job_id))

    async def _run(self, job_id: str) -> None:
        job = await self.jobs.find_one({"job_id": job_id})
        if job is None:
            return
        spec = job["change"]
        change = ManualChange(tuple(spec["add"]), tuple(spec["remove"]), spec["by"], spec["reason"])
        last = job["last_order_no"]
        which = OrderFilter.model_validate(job["filter"]).to_mongo()
        try:
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
                outcomes = await self._editing.change(order_nos, change, f"job:{job_id}")
                last = order_nos[-1]
                changed = sum(r.outcome is EditOutcome.CHANGED for r in outcomes.values())
                await self.jobs.update_one(
                    {"job_id": job_id},
                    {
                        "$set": {"last_order_no": last, "updated_at": datetime.now(UTC)},
                        "$inc": {"processed": len(order_nos), "changed": changed},
                    },
                )
            await self._finish(job)
        except Exception as error:
            log.exception("job_failed", job_id=job_id)
            await self.jobs.update_one(
                {"job_id": job_id}, {"$set": {"status": "failed", "error": str(error)[:500]}}
            )
            raise

    async def _finish(self, job: dict[str, Any]) -> None:
        after = job.get("after") or {}
        if after.get("delete_catalog_tag"):  # rename / merge: the old name leaves the catalog
            await self.catalog.delete_one({"name": after["delete_catalog_tag"]})
        await self.jobs.update_one(
            {"job_id": job["job_id"]}, {"$set": {"status": "done", "updated_at": datetime.now(UTC)}}
        )
        log.info("job_done", job_id=job["job_id"], kind=job["kind"])

    async def stop(self) -> None:
        for task in self._running.values():
            task.cancel()

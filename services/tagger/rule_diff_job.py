"""The diff of a candidate rule version against stored orders, as a job: the Tag API starts it
and answers at once, the jobs role runs it, and its progress and result are read back.

The run walks the window's orders by order number (``rule_changes.diff_against_history``'s
comparison) and checkpoints the tally together with the last order compared, in one
compare-and-set on the job's document while its lease is held (``jobs.Jobs``). A replica killed
mid-diff leaves the tally of its last checkpoint; the next one resumes from there, so every
order is counted exactly once. The finished report is kept with the candidate version
(``RuleVersions.keep_diff``). Reads orders only: a diff writes no order and no tag.

Every changed order (number, customer, time, tags gained and lost, the rules behind them) is
kept beside the job for its CSV (``ChangedOrders``): one document per batch, written before the
batch's checkpoint and keyed by the checkpoint it starts from, so a batch repeated after a kill
replaces its rows rather than adding them again.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.errors import NotFound
from services.tagger.jobs import DIFF_KIND, Checkpoint, Jobs
from services.tagger.rule_changes import ReplayDecoder, ReplayWindow, StoredOrders
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.diff import OrderDiff, RuleDiff
from services.tagger.rules.schema import RuleSet
from shared.events import to_millisecond

log = structlog.get_logger("tagger.rules")

# The table of changed orders: the CSV of a diff job and of ``ordertag ruleset diff --csv``
CHANGE_COLUMNS = ["order_no", "customer_id", "created_at", "gained", "lost", "rules"]
# Rows kept per diff job (about 120 bytes each in MongoDB: 30 MB at most); past it the report
# says how many changed orders the CSV leaves out. They are kept for CHANGES_KEPT_FOR.
CHANGES_KEPT_MAX = 250_000
CHANGES_KEPT_FOR = timedelta(days=30)


def change_row(diff: OrderDiff) -> list[str]:
    """One changed order as a row of ``CHANGE_COLUMNS`` (tags space-separated, as typed)."""
    return [
        diff.order_no,
        diff.customer_id,
        diff.created_at.isoformat(),
        " ".join(diff.gained),
        " ".join(diff.lost),
        " ".join(f"{tag}={rule}" for tag, rule in diff.rule_of.items()),
    ]


class ChangedOrders:
    """The rows of changed orders of diff jobs, one document per batch of a job.

    A batch's rows are keyed by the job and the order number the batch starts after (the
    job's checkpoint): a run resumed after a kill starts from the same checkpoint, so its
    first batch replaces the rows the killed run stored for it. Expire after
    ``CHANGES_KEPT_FOR`` (a TTL index)."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.changes = database["rule_diff_changes"]

    async def ensure_indexes(self) -> None:
        await self.changes.create_index([("job_id", ASCENDING), ("after", ASCENDING)], unique=True)
        await self.changes.create_index(
            "at", expireAfterSeconds=int(CHANGES_KEPT_FOR.total_seconds())
        )

    async def keep(self, job_id: str, after: str, through: str, rows: list[list[str]]) -> None:
        document = {
            "job_id": job_id,
            "after": after,
            "through": through,
            "rows": rows,
            "at": datetime.now(UTC),
        }
        await self.changes.replace_one({"job_id": job_id, "after": after}, document, upsert=True)

    async def rows(self, job_id: str) -> AsyncIterator[list[str]]:
        """The job's rows by order number, each order once (a batch stored by a run that then
        lost its lease may overlap the next one's)."""
        last = ""
        cursor = self.changes.find({"job_id": job_id}, {"_id": 0, "rows": 1}).sort(
            "after", ASCENDING
        )
        async for chunk in cursor:
            for row in chunk["rows"]:
                if row[0] > last:
                    last = row[0]
                    yield row


@dataclass(frozen=True, slots=True)
class DiffRequest:
    """What a diff job compares: ``candidate`` against ``active`` (both recorded versions) on
    the stored orders of ``window``, reporting only ``only_tags`` when given."""

    candidate: str
    active: str
    window: ReplayWindow
    only_tags: frozenset[str] | None = None
    # to the millisecond, as MongoDB keeps it: the version's note of the diff compares it
    started_at: datetime = field(default_factory=lambda: to_millisecond(datetime.now(UTC)))

    def to_document(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "candidate": self.candidate,
            "active": self.active,
            "window": self.window.to_document(),
            "only_tags": None if self.only_tags is None else sorted(self.only_tags),
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "DiffRequest":
        only = document.get("only_tags")
        return cls(
            candidate=document["candidate"],
            active=document["active"],
            window=ReplayWindow.from_document(document["window"]),
            only_tags=None if only is None else frozenset(only),
            started_at=document["started_at"],
        )

    def noted(self, job_id: str) -> dict[str, Any]:
        """How the candidate version notes this diff (``RuleVersions.note_diff``)."""
        return {
            "job_id": job_id,
            "active": self.active,
            "window": self.window.to_document(),
            "started_at": self.started_at,
        }


class RuleDiffJobs:
    """Start diff jobs, run them (as ``jobs.Jobs``' run of ``DIFF_KIND``) and read them."""

    def __init__(
        self,
        versions: RuleVersions,
        orders: StoredOrders,
        *,
        max_tags: int,
        changes_kept_max: int = CHANGES_KEPT_MAX,
    ) -> None:
        self._versions = versions
        self._orders = orders
        self._max_tags = max_tags
        self._rules: dict[str, RuleSet] = {}
        self.changes = ChangedOrders(orders.orders.database)
        self._changes_kept_max = changes_kept_max

    async def start(self, jobs: Jobs, request: DiffRequest) -> tuple[str, int]:
        """Record the job (a jobs replica runs it) and note it on the candidate version:
        the job id and the orders in the window."""
        for version in (request.candidate, request.active):
            await self.rules_of(version)  # refused now (404) rather than failed later
        total = await self._orders.count(request.window)
        await self.changes.ensure_indexes()
        job_id = await jobs.start_run(DIFF_KIND, total, {"diff": request.to_document()})
        await self._versions.note_diff(request.candidate, request.noted(job_id))
        log.info("rules_diff_started", job_id=job_id, candidate=request.candidate, total=total)
        return job_id, total

    async def rules_of(self, version: str) -> RuleSet:
        if version not in self._rules:
            stored = await self._versions.get(version)
            if stored is None:
                raise NotFound(f"no rule version {version!r}: record it first")
            self._rules[version] = stored.rule_set()
        return self._rules[version]

    async def run(self, job: dict[str, Any], checkpoint: Checkpoint) -> None:
        """From the job's last checkpoint to the end of its window, then keep the report with
        the candidate version."""
        request = DiffRequest.from_document(job["diff"])
        active = await self.rules_of(request.active)
        candidate = await self.rules_of(request.candidate)
        tally = RuleDiff.from_report(job.get("result"), request.only_tags)
        kept = int(job.get("changes_kept", 0))
        decode = ReplayDecoder()

        def compare(batch: list[dict[str, Any]]) -> list[list[str]]:
            changed = tally.compare(active, candidate, map(decode, batch), self._max_tags)
            return [change_row(diff) for diff in changed]

        # a checkpoint per batch (one small update per REPLAY_BATCH orders): a killed run
        # repeats at most one batch, and the progress a page shows is one batch old at most
        after = job["last_order_no"]
        async for batch in self._orders.batches(request.window, after=after):
            compared, changed = tally.orders_compared, tally.orders_changed
            # in a thread: the event loop meanwhile reads the next batch from MongoDB
            rows = await asyncio.to_thread(compare, batch)
            rows = rows[: max(0, self._changes_kept_max - kept)]
            through = batch[-1]["order_no"]
            await self.changes.keep(job["job_id"], after, through, rows)
            kept += len(rows)
            await checkpoint(
                through,
                tally.orders_compared - compared,
                tally.orders_changed - changed,
                {"result": tally.report(), "changes_kept": kept},
            )
            after = through
        noted = request.noted(job["job_id"])
        await self._versions.keep_diff(request.candidate, noted, tally.report())
        log.info(
            "rules_diff_done",
            job_id=job["job_id"],
            compared=tally.orders_compared,
            changed=tally.orders_changed,
        )

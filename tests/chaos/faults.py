"""The faults: which process is killed when (SIGKILL, then restarted after a few seconds), and
how long the system took to recover from each: until ingest accepted an order again, until an
order accepted after the restart was tagged, until the next alert reached a receiver."""

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from tests.chaos.processes import ServiceProcess, StackServer, StartFailed
from tests.chaos.receivers import Receiver
from tests.chaos.traffic import Ledger

RECOVERY_WITHIN_S = 60
log = logging.getLogger("chaos")


@dataclass(frozen=True)
class Fault:
    after_s: float  # after the previous fault's restart (the first: after traffic starts)
    target: str  # kafka, mongo, redis, ingest, tagger, notifier
    variant: str = ""  # redis: "empty" (restarted with no data); tagger: "mid-batch"
    down_s: float = 3.0

    @property
    def kind(self) -> str:
        return f"{self.target} ({self.variant})" if self.variant else self.target


# Full run: every server and service killed more than once, one fault at a time, each after
# the system had a few seconds to settle from the one before (restarts take longer on a busy
# machine, so the schedule is relative).
FULL_PLAN = [
    Fault(10, "tagger"),
    Fault(8, "kafka", down_s=4),
    Fault(8, "notifier"),
    Fault(8, "redis"),
    Fault(8, "ingest"),
    Fault(8, "mongo", down_s=4),
    Fault(8, "tagger", "mid-batch"),
    Fault(8, "redis", "empty"),
    Fault(8, "notifier"),
    Fault(8, "kafka", down_s=5),
    Fault(8, "ingest"),
    Fault(8, "mongo"),
    Fault(8, "tagger"),
    Fault(8, "notifier", down_s=2),
]
# Short run (the test suite): fewer faults, one of each server kind and the tagger mid-batch.
SHORT_PLAN = [
    Fault(5, "tagger", "mid-batch", down_s=2),
    Fault(4, "kafka", down_s=3),
    Fault(4, "mongo", down_s=3),
    Fault(4, "notifier", down_s=2),
    Fault(4, "redis", "empty", down_s=2),
]
# Kafka run (for a consumer that does not recover from a broker restart): the tagger restarted
# mid-batch as in the short run, then the broker killed again and again.
KAFKA_PLAN = [Fault(5, "tagger", "mid-batch", down_s=2)] + [Fault(6, "kafka", down_s=3)] * 5
PLANS = {"full": FULL_PLAN, "short": SHORT_PLAN, "kafka": KAFKA_PLAN}


@dataclass
class FaultRecord:
    kind: str
    killed_at_s: float = 0.0
    down_s: float = 0.0  # from the kill until the restart was back up
    restart_s: float = 0.0  # how long the restart itself took
    accepted_after_s: float | None = None  # first new order accepted, from the restart
    tagged_after_s: float | None = None  # first order accepted after the restart, stored
    alerted_after_s: float | None = None  # next alert at a receiver, from the restart
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class Injector:
    def __init__(
        self,
        services: dict[str, ServiceProcess],
        servers: dict[str, StackServer],
        ledger: Ledger,
        db: AsyncDatabase[dict[str, Any]],
        receivers: list[Receiver],
    ) -> None:
        self._services = services
        self._servers = servers
        self._ledger = ledger
        self._db = db
        self._receivers = receivers
        self.records: list[FaultRecord] = []
        self._measures: list[asyncio.Task[None]] = []

    async def run(self, plan: list[Fault], started: float) -> list[FaultRecord]:
        previous = started
        for fault in plan:
            await asyncio.sleep(max(0.0, previous + fault.after_s - time.monotonic()))
            record = FaultRecord(fault.kind)
            self.records.append(record)
            log.warning("fault %s at %.1f s", fault.kind, time.monotonic() - started)
            try:
                restarted = await self._inject(fault, record, started)
            except (StartFailed, OSError) as error:
                record.error = str(error)
                log.warning("fault %s: %s", fault.kind, error)
                previous = time.monotonic()
                continue
            previous = restarted
            log.warning(
                "  %s back up after %.1f s down (restart took %.1f s)",
                fault.kind,
                record.down_s,
                record.restart_s,
            )
            self._measures.append(asyncio.create_task(self._measure(record, restarted)))
        return self.records

    async def measured(self) -> None:
        """Wait for the recovery measurements (they end when traffic ends)."""
        await asyncio.gather(*self._measures)

    async def _inject(self, fault: Fault, record: FaultRecord, started: float) -> float:
        target = self._services.get(fault.target) or self._servers[fault.target]
        if fault.variant == "mid-batch":
            await self._kill_when_tagging(record)
        else:
            await target.kill()
        killed = time.monotonic()
        record.killed_at_s = killed - started
        if fault.variant == "empty":
            self._servers["redis"].wipe_data()
        await asyncio.sleep(fault.down_s)
        restart = time.monotonic()
        note = await target.start()
        if note:
            record.notes.append(note)
        up = time.monotonic()
        record.restart_s = up - restart
        record.down_s = up - killed
        return up

    async def _kill_when_tagging(self, record: FaultRecord) -> None:
        """Kill the tagger while it writes a batch: stop it, let a backlog build, start it and
        kill it again as soon as its first writes of the backlog land."""
        tagger = self._services["tagger"]
        await tagger.kill()
        await asyncio.sleep(2)
        before = await self._stored()
        await tagger.start()
        deadline = time.monotonic() + 60
        while await self._stored() == before:
            if time.monotonic() > deadline:
                record.notes.append("no batch seen within 60 s of the restart; killed anyway")
                break
            await asyncio.sleep(0.05)
        await tagger.kill()
        after = await self._stored()
        record.notes.append(f"killed {after - before} orders into its first batch after a restart")

    async def _measure(self, record: FaultRecord, restarted: float) -> None:
        deadline = restarted + RECOVERY_WITHIN_S  # the traffic goes on at least this long
        first: tuple[float, str] | None = None
        while time.monotonic() < deadline and first is None:
            first = self._ledger.first_accept_after(restarted)
            if first is None:
                await asyncio.sleep(0.1)
        if first is None:
            record.notes.append("no order accepted after the restart")
            return
        record.accepted_after_s = max(0.0, first[0] - restarted)
        alerted = False
        while time.monotonic() < deadline:
            if not alerted:
                latest = max((r.last_delivery_at for r in self._receivers), default=0.0)
                if latest > restarted:
                    record.alerted_after_s = latest - restarted
                    alerted = True
            if record.tagged_after_s is None and await self._is_stored(first[1]):
                record.tagged_after_s = time.monotonic() - restarted
            if alerted and record.tagged_after_s is not None:
                return
            await asyncio.sleep(0.1)

    async def _stored(self) -> int:
        """Orders stored so far (-1 while MongoDB does not answer: it may be the one down)."""
        try:
            return await self._db["orders"].estimated_document_count()
        except PyMongoError:
            return -1

    async def _is_stored(self, order_no: str) -> bool:
        try:
            return await self._db["orders"].find_one({"order_no": order_no}, {"_id": 1}) is not None
        except PyMongoError:
            return False

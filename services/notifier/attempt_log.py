"""The delivery-attempt history (``delivery_attempts``): one document per attempt, for the support
page's detail view and for audits.

Written behind (one ``insert_many`` every fraction of a second instead of one per attempt): the
delivery's *state* is stored synchronously by the claim, this is its history. A batch leaves the
buffer only once MongoDB has it; an outage is retried with backoff, and each attempt has a fixed
``_id`` so a retried insert that had partly succeeded stores nothing twice.
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.notifier.metrics import ATTEMPT_LOG_BUFFERED
from services.notifier.retrying import backoff_s
from shared.mongo import DUPLICATE_KEY

log = structlog.get_logger("notifier.attempt_log")
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_id: str
    number: int  # 1 for the first try of a claim, 2 for its first retry, ...
    alert_ids: list[str]
    channel: str
    ok: bool
    latency_s: float
    error: str | None
    at: datetime

    def document(self) -> dict[str, Any]:
        return {
            "_id": f"{self.attempt_id}/{self.number}",
            "alert_ids": self.alert_ids,
            "channel": self.channel,
            "status": "ok" if self.ok else "error",
            "latency_ms": round(self.latency_s * 1000, 1),
            "error": self.error,
            "at": self.at,
        }


class AttemptLog:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection
        self._buffer: list[Attempt] = []

    def record(
        self,
        attempt_id: str,
        number: int,
        alert_ids: list[str],
        channel: str,
        ok: bool,
        latency_s: float,
        error: str | None,
    ) -> None:
        self._buffer.append(
            Attempt(attempt_id, number, alert_ids, channel, ok, latency_s, error, datetime.now(UTC))
        )
        ATTEMPT_LOG_BUFFERED.set(len(self._buffer))

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def flush(self) -> None:
        """Write what is buffered; raises when MongoDB refuses, leaving the buffer as it was."""
        while self._buffer:
            batch = self._buffer[:MAX_BATCH]
            try:
                await self._collection.insert_many([a.document() for a in batch], ordered=False)
            except BulkWriteError as error:
                others = [e for e in error.details["writeErrors"] if e["code"] != DUPLICATE_KEY]
                if others:
                    raise
            del self._buffer[: len(batch)]  # only now: MongoDB has them
            ATTEMPT_LOG_BUFFERED.set(len(self._buffer))

    async def flush_every(self, seconds: float, *, cap_s: float = 10.0) -> None:
        """Flush on a period until cancelled; a failure is logged and retried with backoff,
        never ends the loop and never drops a batch."""
        failures = 0
        while True:
            await asyncio.sleep(seconds if failures == 0 else backoff_s(failures, seconds, cap_s))
            try:
                await self.flush()
            except Exception as error:  # any store error: keep the batch, try again later
                failures += 1
                log.warning(
                    "attempt_log_flush_failed",
                    buffered=len(self._buffer),
                    failures=failures,
                    error=repr(error)[:200],
                )
            else:
                failures = 0

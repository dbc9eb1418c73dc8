"""The notifier rides out outages: the attempt log never drops a batch, retries wait out a
dependency and let other errors through at once."""

import asyncio
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from services.notifier.attempt_log import AttemptLog
from services.notifier.retrying import through_outages
from tests.conftest import eventually


class FlakyCollection:
    """Refuses the first ``failures`` inserts as MongoDB does when it is down."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.documents: list[dict[str, Any]] = []

    async def insert_many(self, documents: list[dict[str, Any]], ordered: bool) -> None:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("connection refused")
        self.documents.extend(documents)


def record(log: AttemptLog, number: int) -> None:
    log.record("attempt", number, ["SO-1:urgent"], "hook", True, 0.01, None)


async def test_attempt_log_keeps_a_batch_that_mongodb_refused_and_writes_it_later() -> None:
    collection = FlakyCollection(failures=2)
    log = AttemptLog(collection)  # type: ignore[arg-type]
    record(log, 1)
    record(log, 2)

    flushing = asyncio.create_task(log.flush_every(0.01, cap_s=0.05))
    try:
        await eventually(lambda: _done(collection, 2), within=5)
        record(log, 3)  # the loop survived the failures and goes on
        await eventually(lambda: _done(collection, 3), within=5)
    finally:
        flushing.cancel()

    assert [d["_id"] for d in collection.documents] == ["attempt/1", "attempt/2", "attempt/3"]
    assert log.buffered == 0


async def _done(collection: FlakyCollection, count: int) -> bool:
    return len(collection.documents) == count


async def test_flush_raises_and_keeps_the_buffer_when_mongodb_is_down() -> None:
    log = AttemptLog(FlakyCollection(failures=1))  # type: ignore[arg-type]
    record(log, 1)

    with pytest.raises(AutoReconnect):
        await log.flush()

    assert log.buffered == 1


async def test_an_outage_is_waited_out() -> None:
    calls = 0

    async def store() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise AutoReconnect("down")
        return "stored"

    assert await through_outages(store, "test", base_s=0.001) == "stored"
    assert calls == 3


async def test_an_error_that_is_not_an_outage_is_raised_at_once() -> None:
    calls = 0

    async def store() -> None:
        nonlocal calls
        calls += 1
        raise OperationFailure("bad update")

    with pytest.raises(OperationFailure):
        await through_outages(store, "test", base_s=0.001)
    assert calls == 1


async def test_an_outage_longer_than_the_wait_is_raised() -> None:
    async def store() -> None:
        raise AutoReconnect("down")

    with pytest.raises(AutoReconnect):
        await through_outages(store, "test", within_s=0.05, base_s=0.01, cap_s=0.01)

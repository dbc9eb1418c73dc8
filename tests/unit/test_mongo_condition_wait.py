"""PyMongo's waits on its topology and pool conditions never leave the lock taken when the
waiting operation is cancelled (the chaos run's tagger hung for good after a MongoDB kill)."""

import asyncio
import contextlib

import pymongo.asynchronous.pool
import pymongo.asynchronous.topology
from pymongo.lock import _async_create_condition, _async_create_lock

import shared.mongo
from tests.conftest import eventually


def test_the_topology_and_the_pool_wait_in_the_callers_task() -> None:
    assert pymongo.asynchronous.topology._async_cond_wait is shared.mongo.condition_wait_within
    assert pymongo.asynchronous.pool._async_cond_wait is shared.mongo.condition_wait_within


async def test_an_operation_cancelled_as_its_wait_times_out_leaves_the_lock_free() -> None:
    # What server selection does while no server answers: wait on the topology's condition
    # for half a second at a time, under the topology's lock.
    lock = _async_create_lock()
    condition = _async_create_condition(lock)

    async def select_server() -> None:
        async with lock:
            while True:
                await pymongo.asynchronous.topology._async_cond_wait(condition, 0.05)

    selection = asyncio.create_task(select_server())

    async def waiting_on_the_condition() -> bool:
        return bool(condition._waiters)

    await eventually(waiting_on_the_condition)
    # A monitor takes the lock to record a server's new state; meanwhile the selection's
    # wait times out and it queues to take the lock back.
    await lock.acquire()

    async def queued_for_the_lock() -> bool:
        return bool(lock._waiters)

    await eventually(queued_for_the_lock)
    # The operation is cancelled right then (a sibling lane failed, a probe timed out),
    # and the monitor finishes its update.
    selection.cancel()
    lock.release()

    outcome = (await asyncio.gather(selection, return_exceptions=True))[0]
    assert isinstance(outcome, asyncio.CancelledError), outcome

    async def lock_free() -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5), lock:
                return True
        return False

    await eventually(lock_free, within=5)

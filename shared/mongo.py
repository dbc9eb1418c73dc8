"""MongoDB conventions shared by the services, and the one place their clients are built."""

import asyncio
import sys
from typing import Any

import pymongo.asynchronous.pool
import pymongo.asynchronous.topology
import pymongo.lock
from pymongo import AsyncMongoClient

from shared.settings import Settings

# Documents per reply for scans over whole collections. Real MongoDB caps a reply at 16 MB by
# itself; the local mongo-java-server answers a find without a batch size in one reply, which
# PyMongo refuses past 48 MB (about 20,000 tagged orders).
SCAN_BATCH = 1000
# The server's code for a write refused by a unique index (E11000).
DUPLICATE_KEY = 11000


def make_mongo_client(settings: Settings, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A client whose writes are acknowledged only once durable: by default journaled on a
    majority of the replica set (``ORDERTAG_MONGO_WRITE_CONCERN``, ``ORDERTAG_MONGO_JOURNAL``),
    so an acknowledged order survives a crash or a failover. ``wtimeout`` turns a replica set
    that cannot reach a majority into an error (retried, every write is idempotent) instead
    of a write that waits for ever; the socket timeout does the same for a request whose server
    died mid-reply. Datetimes come back timezone-aware (UTC)."""
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        w=settings.mongo_write_concern,
        journal=settings.mongo_journal,
        wTimeoutMS=settings.mongo_write_timeout_ms,
        socketTimeoutMS=settings.mongo_socket_timeout_ms,
        connectTimeoutMS=settings.mongo_connect_timeout_ms,
        **options,
    )


async def condition_wait_within(condition: Any, seconds: float | None) -> bool:
    """PyMongo's wait on a condition (server selection, a full connection pool) with a time
    limit, run in the caller's own task so a cancellation can never leave the lock taken.

    PyMongo (4.20) waits with ``asyncio.wait_for(condition.wait(), timeout)``. Before Python
    3.12, ``wait_for`` runs ``wait()`` as a task of its own; when the limit passes it cancels
    that task and waits for it to take the lock back, and if the caller is cancelled in that
    moment (a sibling lane failed, a ``/readyz`` probe or a batch attempt timed out) it
    returns at once: the caller's ``async with lock`` then releases a lock it does not hold
    (another task's), and the orphaned ``wait()`` takes the lock a moment later and never
    gives it back. Every later operation then waits for ever on the topology lock (CPython
    bpo-41891/bpo-42600, fixed by 3.12's ``wait_for``). Seen after a MongoDB kill, when
    server selections timed out during the restart.
    """
    try:
        async with asyncio.timeout(seconds):
            return bool(await condition.wait())
    except TimeoutError:
        return False


def _wait_conditions_in_the_callers_task() -> None:
    """Point PyMongo's async topology and pool at :func:`condition_wait_within` (Python 3.11
    only: on 3.12 and later ``wait_for`` already waits in the caller's task)."""
    if sys.version_info >= (3, 12):
        return
    for module in (pymongo.lock, pymongo.asynchronous.topology, pymongo.asynchronous.pool):
        if not hasattr(module, "_async_cond_wait"):
            raise RuntimeError(
                f"{module.__name__} no longer has _async_cond_wait: check whether this PyMongo "
                "still waits on conditions with asyncio.wait_for (see shared/mongo.py)"
            )
        module._async_cond_wait = condition_wait_within  # type: ignore[attr-defined]


_wait_conditions_in_the_callers_task()

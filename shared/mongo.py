"""MongoDB conventions shared by the services, and the one place their clients are built."""

from typing import Any

from pymongo import AsyncMongoClient

from shared.settings import Settings

# Documents per reply for scans over whole collections. Real MongoDB caps a reply at 16 MB by
# itself; the local mongo-java-server answers a find without a batch size in one reply, which
# PyMongo refuses past 48 MB (about 20,000 tagged orders).
SCAN_BATCH = 1000


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

"""The routing file's severity ``why`` in other languages, kept in MongoDB for the console.

An alert's cause stores its routing rule's ``why`` as the file writes it (the channels send
it), not its translations: causes stay small. The console's process does not load the routing
file, so the notifier that raises the alerts records each rule's words here when it starts,
keyed by the ``why`` the causes store; the console reads those its alerts name. A ``why`` the
file no longer has keeps its words: alerts raised under it still read in the reader's language.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.routing import Routing

WHY_WORDS = "routing_whys"


async def record_why_words(database: AsyncDatabase[dict[str, Any]], routing: Routing) -> None:
    """Store each severity rule's words in other languages under its ``why`` (one write)."""
    now = datetime.now(UTC)
    writes = [
        UpdateOne({"_id": why}, {"$set": {"whys": words, "recorded_at": now}}, upsert=True)
        for why, words in routing.why_words().items()
    ]
    if writes:
        await database[WHY_WORDS].bulk_write(writes, ordered=False)


async def why_words_in(
    database: AsyncDatabase[dict[str, Any]], whys: Iterable[str], language: str
) -> dict[str, str]:
    """Each of ``whys`` the routing file words in ``language``, as those words (one read; none
    asked, none read)."""
    wanted = sorted(set(whys))
    if not wanted:
        return {}
    found = database[WHY_WORDS].find({"_id": {"$in": wanted}}, {f"whys.{language}": 1})
    return {
        document["_id"]: document["whys"][language]
        async for document in found
        if language in document.get("whys", {})
    }

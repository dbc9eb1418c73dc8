"""How the catalog's tags look on the support page: their colours and the labels a business
gave its own tags, read from the tagger's catalog, so a badge there looks as it does in the
console (a custom tag 回访 in its colour, not a grey ``callback``). The catalog changes by hand:
read at most once a minute."""

from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.now_and_then import REFRESH_S, NowAndThen
from shared.errors import MONGO_OUTAGES

log = structlog.get_logger("notifier")


class TagLooks:
    """The catalog's tags as ``OT.catalog`` takes them: name, colour and labels each."""

    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], refresh_s: float = REFRESH_S
    ) -> None:
        self._catalog = database["tag_catalog"]
        self._looks: list[dict[str, Any]] = []
        self._reads = NowAndThen(self._read, refresh_s)

    async def all(self) -> list[dict[str, Any]]:
        """The tags as last read (none before the first read answers: badges are grey then,
        and the page still opens while MongoDB is away)."""
        await self._reads.fresh_enough()
        return self._looks

    async def _read(self) -> None:
        try:
            cursor = self._catalog.find({}, {"_id": 0, "name": 1, "colour": 1, "labels": 1})
            self._looks = [
                {"name": doc["name"], "colour": doc.get("colour"), "labels": doc.get("labels")}
                async for doc in cursor
            ]
        except MONGO_OUTAGES as error:
            log.warning("tag_looks_not_refreshed", error=repr(error))

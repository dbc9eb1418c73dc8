"""MongoDB reads and writes for orders, their tags and the tag history.

The ``orders`` document carries a ``version``: every write says which version it read, so a
concurrent writer (a manual tag from the Tag API) is never overwritten; the loser re-reads and
re-applies. Writes are one bulk round trip per collection per consumed batch, and an update
sets only the fields that changed.

Tags and history entries are stored compact (``shared/stored_tags.py`` says how, and reads
them back in full, the earlier full form too).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from services.tagger.builtin_labels import former_tag_labels, with_builtin_labels
from services.tagger.order_record import HistoryEntry, OrderRecord, update_of
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import CatalogTag
from shared.mongo import DUPLICATE_KEY, SCAN_BATCH
from shared.stored_history import applied_order, with_first_change
from shared.stored_order import applied_event_ids

CATALOG_FIELDS = {"_id": 0, "created_at": 0, "updated_at": 0}

# The current rule set's reason templates, asked for each time (the rule book reloads).
Templates = Callable[[], ReasonTemplates] | None


# Earlier releases' unique (key, version) indexes, redundant beside the key's own (above)
ORDER_VERSION_INDEX = "order_no_1_version_1"
ABSENT = {26, 27}  # NamespaceNotFound (no collection yet), IndexNotFound


async def drop_index_if_present(collection: AsyncCollection[dict[str, Any]], name: str) -> None:
    """Drop an index an earlier release created and this one no longer needs (another process
    starting at the same time may drop it first)."""
    try:
        await collection.drop_index(name)
    except OperationFailure as error:
        if error.code not in ABSENT:
            raise


class TagExists(Exception):
    """The catalog already has a tag of that name."""


async def unique_indexes_only(database: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether the server is the local MongoDB-wire server (mongo-java-server), whose
    ``buildInfo`` lacks the ``gitVersion`` every MongoDB build reports: its indexes answer
    lookups by value (unique ones, and plain ones for equality) but walk nothing in order.
    There the order list reads candidates by ``tag_keys``; a MongoDB serves it from the
    ``(tag_names, created_at)`` index, and ``tag_keys`` would be pure cost. ``buildInfo``
    needs no privileges."""
    info = await database.client.admin.command("buildInfo")
    return "gitVersion" not in info


class ServerKind:
    """``unique_indexes_only`` of one database, asked once (None: not yet known)."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]], known: bool | None) -> None:
        self._database = database
        self._known = known

    async def unique_indexes_only(self) -> bool:
        if self._known is None:
            self._known = await unique_indexes_only(self._database)
        return self._known


class OrderStore:
    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        templates: Templates = None,
        *,
        unique_indexes_only: bool | None = None,
    ) -> None:
        """``unique_indexes_only``: whether the server is the local one that keeps
        ``tag_keys`` (None: asked of the server on first use)."""
        self._templates = templates
        self.server = ServerKind(database, unique_indexes_only)
        self.orders = database["orders"]
        self.tag_history = database["tag_history"]
        self.tag_catalog = database["tag_catalog"]

    async def seed_catalog(self, tags: list[CatalogTag]) -> None:
        """Add the rule file's catalog tags that the store lacks, with the built-in labels;
        edits made through the Tag API (colour, description, active, labels, permissions) are
        never overwritten. Tags stored before labels and permissions existed get the rule
        file's; a label stored as a former built-in one (新客) gets today's (首单客户)."""
        if not tags:
            return
        writes: list[UpdateOne] = []
        for tag in with_builtin_labels(tags):
            document = tag.model_dump()
            writes.append(
                UpdateOne(
                    {"name": tag.name},
                    {"$setOnInsert": {**document, "created_at": datetime.now(UTC)}},
                    upsert=True,
                )
            )
            writes += [
                UpdateOne(
                    {"name": tag.name, field: {"$exists": False}},
                    {"$set": {field: document[field]}},
                )
                for field in ("labels", "permissions")
            ]
            writes += [
                UpdateOne(
                    {"name": tag.name, f"labels.{code}": {"$in": former}},
                    {"$set": {f"labels.{code}": tag.labels[code]}},
                )
                for code, former in former_tag_labels().get(tag.name, {}).items()
                if code in tag.labels
            ]
        await self.tag_catalog.bulk_write(writes, ordered=False)

    async def ensure_indexes(self) -> None:
        await self.orders.create_index([("order_no", ASCENDING)], unique=True)
        await self.tag_catalog.create_index([("name", ASCENDING)], unique=True)
        await self.orders.create_index([("tag_names", ASCENDING), ("created_at", DESCENDING)])
        await self.orders.create_index([("customer_id", ASCENDING), ("created_at", DESCENDING)])
        await self.orders.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
        # Versioned writes filter on (order_no, version): the order_no index finds them, on a
        # MongoDB and on the local server alike (its unique indexes answer a filter naming
        # their fields and more). An (order_no, version) index of earlier releases only cost
        # every write a key more to change.
        await drop_index_if_present(self.orders, ORDER_VERSION_INDEX)
        if await self.server.unique_indexes_only():
            # The order list's lookup of which candidate orders carry a tag
            # (``queries.tag_keys``). Sparse: orders without the field (no tags, or stored
            # before it existed) are left out, not indexed as one shared null.
            await self.orders.create_index([("tag_keys", ASCENDING)], unique=True, sparse=True)
        # One history entry per (order, event): a replayed batch inserts nothing new.
        await self.tag_history.create_index(
            [("order_no", ASCENDING), ("event_id", ASCENDING)], unique=True
        )

    def templates(self) -> ReasonTemplates | None:
        """The reason templates stored tags are written and read with (None: sentences kept)."""
        return self._templates() if self._templates is not None else None

    async def load(self, order_nos: list[str]) -> dict[str, OrderRecord]:
        templates = self.templates()
        cursor = self.orders.find({"order_no": {"$in": order_nos}}, {"_id": 0})
        return {doc["order_no"]: OrderRecord.from_document(doc, templates) async for doc in cursor}

    async def save(self, records: list[OrderRecord], history: list[HistoryEntry]) -> set[str]:
        """Write each record if nobody changed it since it was read; returns the order numbers
        that lost a race (re-read and re-apply those). History inserts are idempotent."""
        templates = self.templates()
        keyed = await self.server.unique_indexes_only()
        writes: list[InsertOne[dict[str, Any]] | UpdateOne] = []
        for record in records:
            document = record.to_document(templates, keyed=keyed)
            read_version = document["version"]
            document["version"] = read_version + 1
            # Either way a lost race collides with the unique order_no index (E11000): a new
            # order inserted meanwhile by another writer, or (an upsert filtered on the version
            # read) a stored order that another writer moved on. A plain insert is the cheaper
            # write, and most orders are new.
            if read_version == 0:
                writes.append(InsertOne(document))
            else:
                writes.append(
                    UpdateOne(
                        {"order_no": record.order.order_no, "version": read_version},
                        update_of(document, record.stored),
                        upsert=True,
                    )
                )
        # History first, then the orders: an order that records an event always has its
        # history entry, even if the process dies between the two writes (a replay or a
        # resent operation finds the change applied and writes no history of its own).
        versions = {record.order.order_no: record.version + 1 for record in records}
        new = {record.order.order_no: record for record in records if record.version == 0}
        implied = {
            id(entry)
            for entry in history
            if entry.order_no in new and new[entry.order_no].first_change_implied(entry)
        }
        await self._write_history(history, versions, templates, implied)
        conflicts: set[str] = set()
        try:
            if writes:
                await self.orders.bulk_write(writes, ordered=False)
        except BulkWriteError as error:
            for failure in error.details["writeErrors"]:
                if failure["code"] != DUPLICATE_KEY:
                    raise
                conflicts.add(records[failure["index"]].order.order_no)
        if conflicts:
            await self._take_back_history(history, conflicts)
        return conflicts

    async def _take_back_history(self, history: list[HistoryEntry], conflicts: set[str]) -> None:
        """The entries of orders whose write lost a race, unless the winner applied the same
        event (a job replica that took over, a consumer whose partition moved): then the entry
        describes its change. The winner's write is what moved the version, so it is already
        visible here. The retry writes its own entry for an event it still applies."""
        cursor = self.orders.find(
            {"order_no": {"$in": sorted(conflicts)}}, {"_id": 0, "order_no": 1, "applied_events": 1}
        )
        applied = {doc["order_no"]: set(applied_event_ids(doc)) async for doc in cursor}
        stale = [
            entry
            for entry in history
            if entry.order_no in conflicts and entry.event_id not in applied.get(entry.order_no, ())
        ]
        if stale:
            await self.tag_history.delete_many(
                {
                    "order_no": {"$in": sorted({e.order_no for e in stale})},
                    "event_id": {"$in": sorted({e.event_id for e in stale})},
                }
            )

    async def _write_history(
        self,
        history: list[HistoryEntry],
        versions: dict[str, int],
        templates: ReasonTemplates | None,
        implied: set[int],
    ) -> None:
        """One entry per (order, event), the latest derivation of the event's change. Each
        records the order version its change is part of and its step within it (several
        changes of one order in one batch), the order they were applied in. Inserted (an
        upsert costs the local server several times an insert), and replaced where the
        unique (order_no, event_id) index says the entry exists. Entries in ``implied`` (by
        ``id``: new orders' first changes, which the orders keep) are not written."""
        steps: dict[str, int] = {}
        documents = []
        for entry in history:
            step = steps[entry.order_no] = steps.get(entry.order_no, -1) + 1
            if id(entry) not in implied:
                documents.append(entry.to_document(templates, versions.get(entry.order_no), step))
        if not documents:
            return
        try:
            await self.tag_history.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            failures = error.details["writeErrors"]
            if any(f["code"] != DUPLICATE_KEY for f in failures):
                raise
            await self._replace_history([documents[f["index"]] for f in failures])

    async def _replace_history(self, documents: list[dict[str, Any]]) -> None:
        """Entries stored already (a batch applied again after a crash or a lost race): this
        derivation of the event's change replaces theirs."""
        try:
            await self.tag_history.bulk_write(
                [
                    ReplaceOne(
                        {"order_no": document["order_no"], "event_id": document["event_id"]},
                        {key: value for key, value in document.items() if key != "_id"},
                        upsert=True,
                    )
                    for document in documents
                ],
                ordered=False,
            )
        except BulkWriteError as error:  # two writers upserted the same entry at once
            if any(f["code"] != DUPLICATE_KEY for f in error.details["writeErrors"]):
                raise

    def all_orders(self) -> AsyncCursor[dict[str, Any]]:
        """Every stored order in storage order, read in batches (for the figures rebuild, whose
        arithmetic does not depend on the order): no sort for the server to hold, so the first
        batch comes at once however large the store (a sorted read of everything filled the
        local server's heap when rebuilds were cut short and started again)."""
        return self.orders.find({}, {"_id": 0}, batch_size=SCAN_BATCH)

    async def catalog(self) -> dict[str, CatalogTag]:
        cursor = self.tag_catalog.find({}, CATALOG_FIELDS)
        return {doc["name"]: CatalogTag.model_validate(doc) async for doc in cursor}

    async def catalog_tag(self, name: str) -> CatalogTag | None:
        document = await self.tag_catalog.find_one({"name": name}, CATALOG_FIELDS)
        return None if document is None else CatalogTag.model_validate(document)

    async def add_catalog_tag(self, tag: CatalogTag) -> None:
        """Raises ``TagExists`` when the name is taken (the unique index decides, not a read)."""
        try:
            await self.tag_catalog.insert_one({**tag.model_dump(), "created_at": datetime.now(UTC)})
        except DuplicateKeyError:
            raise TagExists(tag.name) from None

    async def remove_catalog_tag(self, name: str) -> None:
        await self.tag_catalog.delete_one({"name": name})

    async def update_catalog_tag(self, name: str, changes: dict[str, Any]) -> CatalogTag | None:
        """The tag as changed, or None if the catalog has no tag ``name``."""
        document = await self.tag_catalog.find_one_and_update(
            {"name": name},
            {"$set": {**changes, "updated_at": datetime.now(UTC)}},
            projection=CATALOG_FIELDS,
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else CatalogTag.model_validate(document)

    async def history_of_orders(self, records: dict[str, OrderRecord]) -> list[dict[str, Any]]:
        """Every history entry of these orders (by order number), as applied, their first
        changes' too (``with_first_change``)."""
        cursor = self.tag_history.find({"order_no": {"$in": sorted(records)}}, {"_id": 0})
        stored: dict[str, list[dict[str, Any]]] = {order_no: [] for order_no in records}
        async for entry in cursor:
            stored[entry["order_no"]].append(entry)
        return sorted(
            (
                entry
                for order_no, record in records.items()
                for entry in with_first_change(
                    stored[order_no], order_no, record.applied_events, record.first_at
                )
            ),
            key=applied_order,
        )

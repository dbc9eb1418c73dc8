"""MongoDB reads and writes for orders, their tags and the tag history.

The ``orders`` document carries a ``version``: every write says which version it read, so a
concurrent writer (a manual tag from the Tag API) is never overwritten; the loser re-reads and
re-applies. Writes are one bulk round trip per consumed batch.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.tagger.builtin_labels import with_builtin_labels
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.rules.regions import region_of
from services.tagger.rules.schema import CatalogTag
from shared.events import AppliedTag
from shared.models import Order, OrderStatus
from shared.mongo import SCAN_BATCH

DUPLICATE_KEY = 11000
APPLIED_EVENTS_KEPT = 50
CATALOG_FIELDS = {"_id": 0, "created_at": 0, "updated_at": 0}


class TagExists(Exception):
    """The catalog already has a tag of that name."""


@dataclass(slots=True)
class OrderRecord:
    """An order as the tagger keeps it: the order, its tags and the figures it was tagged with."""

    order: Order
    status: OrderStatus
    tags: list[AppliedTag]
    figures: FiguresSnapshot
    contribution_reversed: bool = False
    applied_events: list[str] = field(default_factory=list)
    version: int = 0  # 0: not stored yet

    def to_document(self) -> dict[str, Any]:
        return {
            "order_no": self.order.order_no,
            "customer_id": self.order.customer.id,
            "order": self.order.model_dump(mode="json"),
            "status": self.status.value,
            "amount_cents": int(self.order.pricing.total * 100),
            "currency": self.order.pricing.currency,
            "region": region_of(self.order.shipping.province),
            "created_at": self.order.created_at,
            "tags": [tag.model_dump(mode="json") for tag in self.tags],
            "tag_names": [tag.name for tag in self.tags],
            "figures": self.figures.to_record(),
            "contribution_reversed": self.contribution_reversed,
            "applied_events": self.applied_events[-APPLIED_EVENTS_KEPT:],
            "version": self.version,
            "updated_at": datetime.now(UTC),
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "OrderRecord":
        return cls(
            order=Order.model_validate(document["order"]),
            status=OrderStatus(document["status"]),
            tags=[AppliedTag.model_validate(tag) for tag in document.get("tags", [])],
            figures=FiguresSnapshot.from_record(document["figures"]),
            contribution_reversed=bool(document.get("contribution_reversed")),
            applied_events=list(document.get("applied_events", [])),
            version=int(document["version"]),
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of an order's tags: what one event (or one person) added and removed."""

    order_no: str
    event_id: str
    at: datetime
    added: list[AppliedTag]
    removed: list[AppliedTag]
    by: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "order_no": self.order_no,
            "event_id": self.event_id,
            "at": self.at,
            "by": self.by,
            "added": [_history_tag(tag) for tag in self.added],
            "removed": [_history_tag(tag) for tag in self.removed],
        }


def _history_tag(tag: AppliedTag) -> dict[str, Any]:
    return {
        "tag": tag.name,
        "family": tag.family,
        "source": tag.source.value,
        "rule_id": tag.rule_id,
        "rule_version": tag.rule_version,
        "by": tag.by,
        "reason": tag.reason,
    }


class OrderStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.orders = database["orders"]
        self.tag_history = database["tag_history"]
        self.tag_catalog = database["tag_catalog"]

    async def seed_catalog(self, tags: list[CatalogTag]) -> None:
        """Add the rule file's catalog tags that the store lacks, with the built-in labels;
        edits made through the Tag API (colour, description, active, labels, permissions) are
        never overwritten. Tags stored before labels and permissions existed get the rule
        file's."""
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
        await self.tag_catalog.bulk_write(writes, ordered=False)

    async def ensure_indexes(self) -> None:
        await self.orders.create_index([("order_no", ASCENDING)], unique=True)
        await self.tag_catalog.create_index([("name", ASCENDING)], unique=True)
        await self.orders.create_index([("tag_names", ASCENDING), ("created_at", DESCENDING)])
        await self.orders.create_index([("customer_id", ASCENDING), ("created_at", DESCENDING)])
        await self.orders.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
        # Redundant for real MongoDB (order_no alone is unique), but the local mongo-java-server
        # only uses a unique index that matches the filter's keys exactly, and versioned writes
        # filter on both: without it each write scans the collection.
        await self.orders.create_index(
            [("order_no", ASCENDING), ("version", ASCENDING)], unique=True
        )
        # One history entry per (order, event): a replayed batch inserts nothing new.
        await self.tag_history.create_index(
            [("order_no", ASCENDING), ("event_id", ASCENDING)], unique=True
        )

    async def load(self, order_nos: list[str]) -> dict[str, OrderRecord]:
        cursor = self.orders.find({"order_no": {"$in": order_nos}}, {"_id": 0})
        return {doc["order_no"]: OrderRecord.from_document(doc) async for doc in cursor}

    async def save(self, records: list[OrderRecord], history: list[HistoryEntry]) -> set[str]:
        """Write each record if nobody changed it since it was read; returns the order numbers
        that lost a race (re-read and re-apply those). History inserts are idempotent."""
        writes: list[InsertOne[dict[str, Any]] | UpdateOne] = []
        for record in records:
            document = record.to_document()
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
                        {"$set": document},
                        upsert=True,
                    )
                )
        # History first, then the orders: an order that records an event always has its
        # history entry, even if the process dies between the two writes (a replay or a
        # resent operation finds the change applied and writes no history of its own).
        # History of an order that lost a race is taken back afterwards (the retry writes its
        # own).
        await self._insert_history(history)
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
            lost = [e.event_id for e in history if e.order_no in conflicts]
            await self.tag_history.delete_many(
                {"order_no": {"$in": sorted(conflicts)}, "event_id": {"$in": lost}}
            )
        return conflicts

    async def _insert_history(self, history: list[HistoryEntry]) -> None:
        if not history:
            return
        try:
            await self.tag_history.bulk_write(
                [InsertOne(entry.to_document()) for entry in history], ordered=False
            )
        except BulkWriteError as error:  # entries of a replayed batch are already there
            if any(f["code"] != DUPLICATE_KEY for f in error.details["writeErrors"]):
                raise

    def all_orders(self) -> AsyncCursor[dict[str, Any]]:
        """Every stored order, oldest first, read in batches (for figures rebuild)."""
        return self.orders.find({}, {"_id": 0}, batch_size=SCAN_BATCH).sort("created_at", ASCENDING)

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

    async def history_of_order(self, order_no: str) -> list[dict[str, Any]]:
        cursor = self.tag_history.find({"order_no": order_no}, {"_id": 0}).sort("at", ASCENDING)
        return await cursor.to_list(None)

    async def history_of_events(
        self, order_nos: list[str], event_ids: list[str]
    ) -> list[dict[str, Any]]:
        # order_no first: the unique (order_no, event_id) index serves the lookup
        cursor = self.tag_history.find(
            {"order_no": {"$in": order_nos}, "event_id": {"$in": event_ids}}, {"_id": 0}
        )
        return await cursor.to_list(None)

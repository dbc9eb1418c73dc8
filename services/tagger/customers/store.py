"""MongoDB for customers: the ``customers`` documents (tags, history, figures for segments) and
``products`` (each SKU's first sale, for early adopters, and its name: ``products.py``).

A customer document carries a ``version``: a write names the version it read, so the consumer,
the lapsed-customer sweep and a person tagging by hand never overwrite each other; the loser
re-reads and re-evaluates. History lives on the document (the newest ``HISTORY_KEPT`` changes),
written in the same update as the tags, so a crash never leaves one without the other.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.tagger.customers.model import HISTORY_KEPT, CustomerRecord
from services.tagger.customers.products import ProductSale, StoredProduct
from services.tagger.customers.stored import (
    Templates,
    is_compact,
    stored_customer_tag,
    stored_entry,
    templates_now,
)
from services.tagger.rules.customer_facts import SECONDS_PER_DAY, LiveFigures
from services.tagger.store import drop_index_if_present
from shared.mongo import DUPLICATE_KEY
from shared.stored_tags import ReasonTemplates

CUSTOMER_VERSION_INDEX = "_id_1_version_1"


def figures_fields(figures: LiveFigures, now: float, top_category: str | None) -> dict[str, Any]:
    """The figures a segment filters, sorts and exports by, flat on the document."""
    today = int(now // SECONDS_PER_DAY)
    return {
        "orders": figures.orders,
        "spend_cents": figures.spend_cents,
        "spend_365d_cents": sum(c for d, c in figures.spend_by_day.items() if today - 365 < d),
        "first_order_at": _time(figures.first_order_at),
        "last_order_at": _time(figures.last_order_at),
        "top_category": top_category,
    }


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


_ABSENT = object()


def _tags_as_stored(
    record: CustomerRecord, templates: ReasonTemplates | None
) -> list[dict[str, Any]]:
    """The record's tags as stored: a tag the evaluation kept (the object read, stored in the
    compact form) in the form it was read, the others made (making every tag again was ~9 µs
    for a customer of eight tags, a quarter of preparing its write). The tags read stay
    referenced by the record, so no new tag can share an ``id`` with one of them."""
    read = {id(tag): stored for tag, stored in record.read_tags if is_compact(stored)}
    return [read.get(id(tag)) or stored_customer_tag(tag, templates) for tag in record.tags]


def _same(stored: Any, value: Any) -> bool:
    """Whether a field as read already holds the value about to be written (MongoDB keeps
    datetimes in UTC and, by default, hands them back without a time zone)."""
    if isinstance(stored, datetime) and isinstance(value, datetime):
        return _utc(stored) == _utc(value)
    return bool(stored == value)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _laid_out(stored: Any, tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``tags`` where the stored document holds them: a tag it holds stays at its position, a
    new tag takes the place of one removed, the rest come after. The customer page lists them
    in that order; the write then changes only what moved."""
    if not isinstance(stored, list):
        return tags
    new = {tag["name"]: tag for tag in tags}
    places = [new.pop(t.get("name"), None) if isinstance(t, dict) else None for t in stored]
    coming = iter(list(new.values()))
    laid = [tag if tag is not None else next(coming, None) for tag in places]
    return [tag for tag in laid if tag is not None] + list(coming)


def _changed_tags(stored: Any, tags: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields to set for a customer's tags to become ``tags`` (``_laid_out``): by position,
    only what changed (``tags.2.args`` when an order moved the figures a reason quotes,
    ``tags.4`` for a tag new there, past the end to add one); the whole list when tags were
    removed and nothing took their place. The write is conditional on the version read, so
    the positions are the ones read. The tags written whole on every order were two thirds of
    the bytes a customer's update carried."""
    if not isinstance(stored, list) or len(tags) < len(stored):
        return {"tags": tags}
    changed: dict[str, Any] = {}
    for position, after in enumerate(tags):
        before = stored[position] if position < len(stored) else None
        if (
            not isinstance(before, dict)
            or before.get("name") != after["name"]
            or before.keys() - after.keys()  # a field it no longer has (a reason now values)
        ):
            changed[f"tags.{position}"] = after
            continue
        if before == after:  # most of a customer's tags
            continue
        for key, value in after.items():
            if not _same(before.get(key, _ABSENT), value):
                changed[f"tags.{position}.{key}"] = value
    return changed


def _changed_names(stored: Any, names: list[str]) -> dict[str, Any]:
    """``tag_names`` set as the tags are (``_changed_tags``): by position, whole when shorter."""
    if not isinstance(stored, list) or len(names) < len(stored):
        return {"tag_names": names}
    return {
        f"tag_names.{position}": name
        for position, name in enumerate(names)
        if position >= len(stored) or stored[position] != name
    }


class CustomerStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]], templates: Templates) -> None:
        """``templates``: the customer rules' reason templates now (a reason is stored as its
        values; None: as the sentence)."""
        self._templates = templates
        self.customers = database["customers"]
        self.products = database["products"]
        self.rule_versions = database["customer_rule_versions"]

    async def ensure_indexes(self) -> None:
        await self.customers.create_index([("tag_names", ASCENDING)])
        await self.customers.create_index([("next_review_at", ASCENDING)])
        await self.customers.create_index([("spend_cents", DESCENDING), ("_id", ASCENDING)])
        await self.customers.create_index([("last_order_at", DESCENDING), ("_id", ASCENDING)])
        # a segment's size over time reads only customers who changed in its window
        await self.customers.create_index([("history.tag", ASCENDING), ("history.at", ASCENDING)])
        await self.customers.create_index([("first_order_at", ASCENDING)])
        await self.products.create_index([("slug", ASCENDING)])  # a product tag's product
        # Versioned writes filter on {_id, version}: the _id index finds them (see the orders'
        # store); the (_id, version) index of earlier releases is dropped.
        await drop_index_if_present(self.customers, CUSTOMER_VERSION_INDEX)

    async def load(self, customer_ids: Iterable[str]) -> dict[str, CustomerRecord]:
        cursor = self.customers.find({"_id": {"$in": sorted(set(customer_ids))}}, {"history": 0})
        templates = templates_now(self._templates)
        return {doc["_id"]: CustomerRecord.from_document(doc, templates) async for doc in cursor}

    async def document(self, customer_id: str) -> dict[str, Any] | None:
        return await self.customers.find_one({"_id": customer_id})

    async def save(
        self,
        record: CustomerRecord,
        fields: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> bool:
        """Write the customer if it is still at ``record.version``; False: it changed meanwhile."""
        return not await self.save_many([(record, fields, history)])

    async def save_many(
        self, writes: list[tuple[CustomerRecord, dict[str, Any], list[dict[str, Any]]]]
    ) -> set[str]:
        """Write each customer still at the version it was read at, in one bulk round trip;
        answers the customers whose write lost a race (changed or created meanwhile).

        A new customer is a plain insert (an upsert costs the local server several times as
        much): one created meanwhile collides with its _id. A stored one is an update filtered
        on the version read. When every update matched, none lost (the usual case: nothing
        more to ask); otherwise the bulk answer counts matches but does not say which, so each
        update carries a token of this call and the tokens of the updated are read back."""
        if not writes:
            return set()
        token = ObjectId()  # unique to this call; 12 bytes where a UUID's hex was 32
        operations: list[InsertOne[dict[str, Any]] | UpdateOne] = [
            InsertOne(self._new_document(record, fields, history))
            if record.version == 0
            else UpdateOne(
                {"_id": record.customer_id, "version": record.version},
                self._update(record, {**fields, "write_token": token}, history),
            )
            for record, fields, history in writes
        ]
        updates = [record.customer_id for record, _, _ in writes if record.version != 0]
        try:
            result = await self.customers.bulk_write(operations, ordered=False)
            matched = result.matched_count
        except BulkWriteError as error:
            failures = error.details["writeErrors"]
            if any(failure["code"] != DUPLICATE_KEY for failure in failures):
                raise
            lost = {writes[failure["index"]][0].customer_id for failure in failures}
            matched = error.details["nMatched"]
        else:
            lost = set()
        if matched == len(updates):
            return lost  # every update found its version
        cursor = self.customers.find({"_id": {"$in": updates}}, {"write_token": 1})
        written = {doc["_id"] async for doc in cursor if doc.get("write_token") == token}
        return lost | (set(updates) - written)

    def _new_document(
        self, record: CustomerRecord, fields: dict[str, Any], history: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """A customer stored for the first time: what an update would set, and its history."""
        document = {"_id": record.customer_id, **self._update(record, fields, [])["$set"]}
        if history:
            templates = templates_now(self._templates)
            kept = history[-HISTORY_KEPT:]
            document["history"] = [stored_entry(row, templates) for row in kept]
        return document

    def changes_nothing(self, record: CustomerRecord, fields: dict[str, Any]) -> bool:
        """Whether writing ``fields`` and the record's tags and profile would change nothing but
        when it was evaluated (a status change that moved no figure): such a write is not sent,
        and ``evaluated_at`` stays the last evaluation that changed something."""
        stored = record.stored
        if stored is None:
            return False
        if any(
            not _same(stored.get(k, _ABSENT), v) for k, v in fields.items() if k != "evaluated_at"
        ):
            return False  # the usual answer (a new order moves the figures), found cheaply
        changed = self._update(record, fields, [])["$set"]
        return not changed.keys() - {"version", "evaluated_at"}

    def _update(
        self, record: CustomerRecord, fields: dict[str, Any], history: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Set what differs from the document as read (all of it for a new customer): the
        version (and the write's token) always, the tags and figures when they moved."""
        templates = templates_now(self._templates)
        tags = _tags_as_stored(record, templates)
        if record.stored is not None:
            tags = _laid_out(record.stored.get("tags"), tags)
        values = {
            **fields,
            "name": record.profile.name,
            "company": record.profile.company,
            "vip": record.profile.vip,
            "profile_at": record.profile_at,
            "tag_names": [tag["name"] for tag in tags],
        }
        if record.stored is None:
            values["tags"] = tags
        else:
            stored = record.stored
            values = {k: v for k, v in values.items() if not _same(stored.get(k, _ABSENT), v)}
            if "tag_names" in values:
                values.update(_changed_names(stored.get("tag_names"), values.pop("tag_names")))
            values.update(_changed_tags(stored.get("tags"), tags))
        update: dict[str, Any] = {"$set": {**values, "version": record.version + 1}}
        if history:
            entries = [stored_entry(row, templates) for row in history]
            update["$push"] = {"history": {"$each": entries, "$slice": -HISTORY_KEPT}}
        return update

    async def record_products(self, sold: Mapping[str, ProductSale]) -> None:
        """Each SKU's earliest sale and newest name seen (``ProductSale.update``: replays and
        late events change nothing or move the first sale earlier)."""
        if not sold:
            return
        await self.products.bulk_write(
            [UpdateOne({"_id": sku}, sold[sku].update(sku), upsert=True) for sku in sorted(sold)],
            ordered=False,
        )

    async def stored_products(self, skus: Iterable[str]) -> dict[str, StoredProduct]:
        wanted = sorted(set(skus))
        if not wanted:
            return {}
        cursor = self.products.find({"_id": {"$in": wanted}})
        return {doc["_id"]: StoredProduct.of(doc) async for doc in cursor}

    async def first_sales_with(
        self, skus: Iterable[str], sold: Mapping[str, ProductSale]
    ) -> dict[str, float]:
        """The SKUs' first sales with ``sold`` (the products of new orders) counted: one read,
        and a write of only the products they change (an earlier sale, a newer name; usually
        none: a product's later sales and replays cost the store nothing)."""
        stored = await self.stored_products({*skus, *sold})
        changed = {
            sku: sale
            for sku, sale in sold.items()
            if sku not in stored or stored[sku].changed_by(sale)
        }
        await self.record_products(changed)
        first = {sku: product.first_sold_at for sku, product in stored.items()}
        for sku, sale in changed.items():
            first[sku] = min(first.get(sku, sale.first_sold_at), sale.first_sold_at)
        return first

    async def rules_changed(self, version: str) -> bool:
        """Record ``version`` as the customer rules in force; True once per new version, for
        one caller only (the one whose write recorded it)."""
        try:
            result = await self.rule_versions.update_one(
                {"_id": "customer_rules", "version": {"$ne": version}},
                {"$set": {"version": version, "at": datetime.now(UTC)}},
                upsert=True,
            )
        except DuplicateKeyError:  # already recorded (the filter missed, the upsert collided)
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    async def mark_all_due(self, now: datetime) -> int:
        """Every customer due for review (the customer rules changed)."""
        result = await self.customers.update_many({}, {"$set": {"next_review_at": now}})
        return result.modified_count

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Customers whose tags the passing of time may have changed by ``now``."""
        cursor = self.customers.find({"next_review_at": {"$lte": now}}, {"_id": 1}).limit(limit)
        return [doc["_id"] async for doc in cursor]

"""Segments: customers found by their tags and figures, paged, exported, and counted over time.

Reads only (the ``customers`` documents the customer tagging writes, and the ``orders`` and
``alerts`` of one customer for the customer page).
"""

import base64
import json
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.customers.products import PRODUCT_FACT, product_shown
from services.tagger.customers.segment_sizes import size_over_time
from services.tagger.customers.stored import (
    Templates,
    iso_time,
    listed,
    readable_entry,
    readable_tag,
    templates_now,
)
from services.tagger.errors import Invalid
from services.tagger.queries import MAX_TAGS_IN_FILTER, Amount, Instant, TagName
from services.tagger.rules.reasons import ReasonTemplates, TranslatedReasons
from shared.events import TagSource
from shared.money import cents_text, to_cents
from shared.stored_order import currency_of
from shared.stored_tags import RULE_NAMING_FAMILY

LISTED = {"history": 0, "next_review_at": 0, "profile_at": 0}
EXPORT_CHUNK = 1000
MAX_DAYS = 366


class CustomerSort(StrEnum):
    SPEND = "-spend"
    LAST_ORDER = "-last_order"
    CUSTOMER = "customer"


_SORT_FIELD = {
    CustomerSort.SPEND: ("spend_cents", DESCENDING),
    CustomerSort.LAST_ORDER: ("last_order_at", DESCENDING),
    CustomerSort.CUSTOMER: ("_id", ASCENDING),
}


class TagFilter(BaseModel):
    """Which customers by tags: all of, any of, none of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all_tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS_IN_FILTER)
    any_tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS_IN_FILTER)
    none_tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS_IN_FILTER)

    def holds_for(self, tags: set[str]) -> bool:
        return (
            all(t in tags for t in self.all_tags)
            and (not self.any_tags or any(t in tags for t in self.any_tags))
            and not any(t in tags for t in self.none_tags)
        )

    def tag_query(self) -> dict[str, Any]:
        tags: dict[str, Any] = {}
        if self.all_tags:
            tags["$all"] = self.all_tags
        if self.none_tags:
            tags["$nin"] = self.none_tags
        query: dict[str, Any] = {"tag_names": tags} if tags else {}
        if self.any_tags:
            query = (
                {"$and": [query, {"tag_names": {"$in": self.any_tags}}]}
                if query
                else {"tag_names": {"$in": self.any_tags}}
            )
        return query


class CustomerFilter(TagFilter):
    """Which customers: every condition given must hold."""

    spend_min: Amount | None = None
    spend_max: Amount | None = None
    orders_min: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    last_order_from: Instant | None = None
    last_order_to: Instant | None = None
    customer_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _ranges(self) -> "CustomerFilter":
        low, high = self.spend_min, self.spend_max
        if low is not None and high is not None and low > high:
            raise ValueError("spend_min must not exceed spend_max")
        start, end = self.last_order_from, self.last_order_to
        if start and end and start > end:
            raise ValueError("last_order_from must not be after last_order_to")
        return self

    def to_mongo(self) -> dict[str, Any]:
        query = self.tag_query()
        spend: dict[str, int] = {}
        if self.spend_min is not None:
            spend["$gte"] = to_cents(self.spend_min)
        if self.spend_max is not None:
            spend["$lte"] = to_cents(self.spend_max)
        last: dict[str, datetime] = {}
        if self.last_order_from:
            last["$gte"] = self.last_order_from
        if self.last_order_to:
            last["$lte"] = self.last_order_to
        for field, condition in (("spend_cents", spend), ("last_order_at", last)):
            if condition:
                query[field] = condition
        if self.orders_min is not None:
            query["orders"] = {"$gte": self.orders_min}
        if self.customer_id:
            query["_id"] = self.customer_id
        return query


class Segments:
    def __init__(self, database: AsyncDatabase[dict[str, Any]], templates: Templates) -> None:
        """``templates``: the customer rules' reason templates now (a reason stored as its
        values is rendered with them)."""
        self._templates = templates
        self._customers = database["customers"]
        self._orders = database["orders"]
        self._alerts = database["alerts"]
        self._products = database["products"]

    async def page(
        self,
        which: CustomerFilter,
        sort: CustomerSort,
        limit: int,
        cursor: str | None = None,
        reasons: "Reasons | None" = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page in a stable order (the sort field, then the customer id) and the cursor
        of the next, if there may be one; rule reasons in ``reasons``' language where the rule
        has it, as on the customer page."""
        query = which.to_mongo()
        if cursor:
            query = {"$and": [query, _after(sort, cursor)]}
        field, direction = _SORT_FIELD[sort]
        order = [(field, direction)] + ([("_id", ASCENDING)] if field != "_id" else [])
        documents = await self._customers.find(query, LISTED).sort(order).limit(limit).to_list()
        next_cursor = _cursor(sort, documents[-1]) if len(documents) == limit else None
        templates = templates_now(self._templates)
        rows = [listed(d, templates) for d in documents]
        return await self._rows_in_reader_words(rows, reasons), next_cursor

    async def _rows_in_reader_words(
        self, rows: list[dict[str, Any]], reasons: "Reasons | None"
    ) -> list[dict[str, Any]]:
        if reasons is None:
            return rows
        tags = await self._in_reader_words(reasons, [row["tags"] for row in rows])
        return [{**row, "tags": row_tags} for row, row_tags in zip(rows, tags, strict=True)]

    async def tags_in_use(self) -> list[str]:
        """Every tag some customer carries (rule-made ones such as ``prefers:家居`` included);
        MongoDB answers a distinct from the ``tag_names`` index."""
        return sorted(str(name) for name in await self._customers.distinct("tag_names"))

    async def products_named(self, slugs: Iterable[str]) -> dict[str, dict[str, str]]:
        """The products tags name by ``slugs`` (``sofa-1``), each as ``{"sku", "name"}``: the
        name its newest orders give it (``products.py``). A product without a stored name is
        left out; of two SKUs a tag cannot tell apart (``SOFA-1``, ``sofa 1``), the first."""
        wanted = sorted(set(slugs))
        if not wanted:
            return {}
        cursor = self._products.find({"slug": {"$in": wanted}}, {"slug": 1, "named.name": 1})
        found: dict[str, dict[str, str]] = {}
        async for doc in cursor.sort("_id"):
            if doc.get("named"):
                found.setdefault(doc["slug"], {"sku": doc["_id"], "name": doc["named"]["name"]})
        return found

    async def _in_reader_words(
        self, reasons: "Reasons", groups: list[list[dict[str, Any]]]
    ) -> list[list[dict[str, Any]]]:
        """Groups of rule tags or history entries with their reasons in ``reasons``' language
        (``in_language``), the products they name read once for all of them."""
        reasons = await self._products_named_in(reasons, [e for group in groups for e in group])
        return [[in_language(entry, reasons) for entry in group] for group in groups]

    async def _products_named_in(
        self, reasons: "Reasons", entries: Iterable[dict[str, Any]]
    ) -> "Reasons":
        """``reasons`` showing the products the entries' reasons name (``{sku}``) as their
        orders call them, ``无线耳机 (EARBUDS-06)`` as the product's tag reads (one read of the
        products); a product without a stored name keeps its SKU."""
        if not isinstance(reasons, TranslatedReasons):
            return reasons
        skus: set[str] = set()
        for entry in entries:
            rule = _rule_reason(entry)
            if rule is None:
                continue
            args = reasons.args_of(*rule)
            if args:
                facts = reasons.facts_shown(rule[0], rule[1])
                skus.update(a for f, a in zip(facts, args, strict=True) if f == PRODUCT_FACT)
        if not skus:
            return reasons
        cursor = self._products.find({"_id": {"$in": sorted(skus)}}, {"named.name": 1})
        named = {
            doc["_id"]: product_shown(doc["named"]["name"], doc["_id"])
            async for doc in cursor
            if doc.get("named")
        }
        return reasons.with_values(PRODUCT_FACT, named)

    async def tag_usage(self) -> dict[str, int]:
        """How many customers carry each tag."""
        cursor = await self._customers.aggregate(
            [{"$unwind": "$tag_names"}, {"$group": {"_id": "$tag_names", "customers": {"$sum": 1}}}]
        )
        return {str(row["_id"]): int(row["customers"]) for row in await cursor.to_list(None)}

    async def customers_per_rule(self) -> dict[str, int]:
        """Per customer rule, how many customers carry a tag it gave (a customer with two of one
        rule's tags, ``prefers:beauty`` and ``prefers:home-goods``, counts once). A stored rule
        tag names its rule as ``rule_id``, or as ``rule`` where the rule's id names its family
        (``shared.stored_tags.whole_rule``); a rule's tag leaves ``source`` out."""
        rule = {"$ifNull": ["$tags.rule_id", f"$tags.{RULE_NAMING_FAMILY}"]}
        cursor = await self._customers.aggregate(
            [
                {"$unwind": "$tags"},
                {"$match": {"tags.source": {"$in": [None, TagSource.RULE.value]}}},
                {"$group": {"_id": {"rule": rule, "customer": "$_id"}}},
                {"$group": {"_id": "$_id.rule", "customers": {"$sum": 1}}},
            ]
        )
        rows = await cursor.to_list(None)
        return {str(row["_id"]): int(row["customers"]) for row in rows if row["_id"] is not None}

    async def export(
        self,
        which: CustomerFilter,
        sort: CustomerSort,
        max_rows: int,
        reasons: "Reasons | None" = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The segment's customers, rule reasons in ``reasons``' language as on ``page`` (the
        products named read once per ``EXPORT_CHUNK`` customers)."""
        field, direction = _SORT_FIELD[sort]
        order = [(field, direction)] + ([("_id", ASCENDING)] if field != "_id" else [])
        cursor = self._customers.find(which.to_mongo(), LISTED).sort(order).limit(max_rows)
        templates = templates_now(self._templates)
        chunk: list[dict[str, Any]] = []
        async for document in cursor.batch_size(EXPORT_CHUNK):
            chunk.append(listed(document, templates))
            if len(chunk) == EXPORT_CHUNK:
                for row in await self._rows_in_reader_words(chunk, reasons):
                    yield row
                chunk = []
        for row in await self._rows_in_reader_words(chunk, reasons):
            yield row

    async def customer(
        self, customer_id: str, reasons: "Reasons | None" = None
    ) -> dict[str, Any] | None:
        """The customer page: tags with provenance, history (newest first), figures, recent
        orders and their alerts; rule reasons in ``reasons``' language where the rule has it."""
        document = await self._customers.find_one({"_id": customer_id})
        if document is None:
            return None
        templates = templates_now(self._templates)
        tags = [readable_tag(tag, templates) for tag in document.pop("tags", [])]
        history = [readable_entry(entry, templates) for entry in document.get("history", [])]
        if reasons is not None:
            tags, history = await self._in_reader_words(reasons, [tags, history])
        orders = await (
            self._orders.find(
                {"customer_id": customer_id},
                {
                    "_id": 0,
                    "order_no": 1,
                    "status": 1,
                    "amount_cents": 1,
                    "currency": 1,
                    "created_at": 1,
                    "tag_names": 1,
                },
            )
            .sort("created_at", DESCENDING)
            .limit(50)
            .to_list()
        )
        alerts = await (
            self._alerts.find(
                {"order_no": {"$in": [o["order_no"] for o in orders]}},
                {"_id": 0, "deliveries": 0},
            )
            .sort("created_at", DESCENDING)
            .limit(50)
            .to_list()
        )
        return {
            **listed(document),
            "tags": tags,
            "history": list(reversed(history)),
            "next_review_at": iso_time(document.get("next_review_at")),
            "orders_list": [
                {
                    "order_no": o["order_no"],
                    "status": o.get("status"),
                    "amount": cents_text(o.get("amount_cents", 0)),
                    "currency": currency_of(o),
                    "created_at": iso_time(o.get("created_at")),
                    "tag_names": o.get("tag_names", []),
                }
                for o in orders
            ],
            "alerts": alerts,
        }

    async def size_over_time(
        self, which: TagFilter, days: int, today: date
    ) -> list[dict[str, Any]]:
        """Customers in the segment at the end of each of the last ``days`` days (UTC):
        ``segment_sizes.size_over_time``."""
        return await size_over_time(self._customers, which, days, today)


Reasons = ReasonTemplates | TranslatedReasons


def in_language(entry: dict[str, Any], reasons: Reasons) -> dict[str, Any]:
    """A rule tag (or history entry) with its stored reason put in the reader's language: the
    reason is taken apart with the rule's own template and filled into the translation; a
    reason that is no rendering of its rule version (a manual one) stays as it is."""
    rule = _rule_reason(entry)
    if rule is None:
        return entry
    args = reasons.args_of(*rule)
    text = None if args is None else reasons.reason(rule[0], rule[1], args)
    return {**entry, "reason": text} if text else entry


def _rule_reason(entry: dict[str, Any]) -> tuple[str, int, str] | None:
    """(rule id, version, stored reason) of a rule tag or history entry with a reason."""
    if entry.get("source") != "rule" or not entry.get("rule_id") or not entry.get("reason"):
        return None
    return str(entry["rule_id"]), int(entry.get("rule_version") or 0), str(entry["reason"])


def _cursor(sort: CustomerSort, document: dict[str, Any]) -> str:
    field, _ = _SORT_FIELD[sort]
    value = document.get(field)
    value = iso_time(value) if isinstance(value, datetime) else value
    raw = json.dumps({"s": sort.value, "v": value, "c": document["_id"]})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _after(sort: CustomerSort, cursor: str) -> dict[str, Any]:
    field, direction = _SORT_FIELD[sort]
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if data["s"] != sort.value:
            raise ValueError("the cursor belongs to another sort order")
        customer = str(data["c"])
        raw = data["v"]
        if field == "last_order_at":
            value: Any = datetime.fromisoformat(raw)
        elif field == "spend_cents":
            if not isinstance(raw, int) or isinstance(raw, bool) or abs(raw) >= 2**63:
                raise ValueError("the spend position must be an integer number of cents")
            value = raw
        else:
            value = customer
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise Invalid("cursor", f"not a cursor this API made ({error})") from None
    beyond = "$lt" if direction < 0 else "$gt"
    if field == "_id":
        return {"_id": {"$gt": customer}}
    return {"$or": [{field: {beyond: value}}, {field: value, "_id": {"$gt": customer}}]}

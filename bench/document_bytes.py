"""What the tagger stores per order, field by field: the tagger bench's order mix tagged in
process by the real use case (rules, Redis figures, the store) into a database of its own, then
every stored document read back as raw BSON and its bytes split by top-level field.

    uv run python -m bench.document_bytes [ORDERS] [--as-mongodb] [--release-before]

Issue #14's third target is bytes written to MongoDB per tagged order (orders + history, BSON as
stored, on average): this shows where they go. The local MongoDB-wire server keeps ``tag_keys``
for its order list, a MongoDB does not; ``--as-mongodb`` writes what the tagger writes to a
MongoDB (into the local server: the documents are the same, only their indexes differ);
``--release-before`` what the releases before the 2026-11-27 (night) one wrote (forms this
one reads: the saving of those forms, measured in the same run).
"""

import asyncio
import json
import re
import sys
from collections import Counter
from contextlib import nullcontext
from typing import Any, cast

import bson
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import monitoring

from bench.harness import cpu_seconds, isolated_settings, run_prefix, stack_pids
from bench.orders import order_payloads
from bench.written_forms import written_as_before
from services.tagger.bootstrap import open_stores
from services.tagger.customers.store import CustomerStore
from services.tagger.customers.tagging import CustomerTagging
from services.tagger.rules.book import RuleBook
from services.tagger.rules.reasons import customer_reason_templates, reason_templates
from services.tagger.settings import TaggerSettings
from services.tagger.store import OrderStore
from services.tagger.tagging import TaggingService
from shared.events import OrderCreated
from shared.models import Order
from shared.mongo import SCAN_BATCH

BATCH = 500  # the tagger's batch size (``tagger_batch_max_records``)
COLLECTIONS = ("orders", "tag_history")
CUSTOMER_COLLECTIONS = ("customers", "products")
_POSITION = re.compile(r"\.\d+")  # tags.3.args -> tags.N.args


class WriteCommands(monitoring.CommandListener):
    """Write commands sent per collection (a bulk write of inserts and updates is two), and
    the bytes of what they write: an inserted document whole, an update as its update
    document (the fields it sets and pushes, what a MongoDB's oplog carries), by field."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[str, str]] = Counter()
        self.written: Counter[tuple[str, str]] = Counter()  # (collection, field) -> bytes
        self.documents: Counter[str] = Counter()  # collection -> documents inserted or updated

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        kind = event.command_name
        if kind not in ("insert", "update", "delete"):
            return
        collection = str(event.command[kind])
        self.sent[(collection, kind)] += 1
        if kind == "insert":
            for document in event.command.get("documents", ()):
                self.documents[collection] += 1
                self.written[(collection, "(inserted documents)")] += len(bson.encode(document))
        elif kind == "update":
            for statement in event.command.get("updates", ()):
                self.documents[collection] += 1
                for operator, fields in statement["u"].items():
                    for key, value in fields.items():
                        field = f"{operator} {_POSITION.sub('.N', key)}"
                        self.written[(collection, field)] += len(bson.encode({key: value})) - 5

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def field_bytes(raw: bytes | memoryview) -> dict[str, int]:
    """Each top-level field's bytes in one BSON document (type byte, name, value); with the
    document's own 5 bytes (length, terminator) they add up to the document's size."""
    document = bson.decode(raw)
    sizes = {key: len(bson.encode({key: value})) - 5 for key, value in document.items()}
    sizes["(document header)"] = 5
    return sizes


async def stored_fields(settings: TaggerSettings, orders: int) -> dict[str, Any]:
    """The stored documents of ``settings.mongo_database`` per order, by collection and field."""
    async with open_stores(settings) as stores:
        raw = CodecOptions(document_class=RawBSONDocument)
        result: dict[str, Any] = {}
        for name in COLLECTIONS:
            collection = stores.database.get_collection(name, codec_options=raw)
            fields: Counter[str] = Counter()
            documents = total = 0
            async for document in collection.find({}, batch_size=SCAN_BATCH):
                data = cast(RawBSONDocument, document).raw
                documents += 1
                total += len(data)
                fields.update(field_bytes(data))
            result[name] = {
                "documents_per_order": round(documents / orders, 3),
                "bytes_per_order": round(total / orders, 1),
                "fields_per_order": {
                    key: round(size / orders, 1) for key, size in fields.most_common()
                },
            }
        return result


async def measure(count: int = 2_000, unique_indexes_only: bool | None = None) -> dict[str, Any]:
    """Tag ``count`` bench orders in batches of ``BATCH`` and measure what was stored, as for
    the server the stack runs (``unique_indexes_only`` None) or as said."""
    settings = TaggerSettings(**isolated_settings("bytes").model_dump())
    rules = RuleBook(settings.tagger_rules_file)
    events = [
        OrderCreated(order=Order.model_validate(payload))
        for payload in order_payloads(count, run_prefix())
    ]
    writes = WriteCommands()  # this client's alone: a listener registered for all is never let go
    try:
        async with open_stores(settings, rules, [writes]) as stores:
            store = OrderStore(
                stores.database,
                lambda: reason_templates(rules.current),
                unique_indexes_only=unique_indexes_only,
            )
            await store.ensure_indexes()
            tagging = TaggingService(
                rules,
                stores.figures,
                store,
                max_tags=settings.tagger_max_tags_per_order,
                lanes=1,  # one lane: the bulk writes counted are a whole batch's
            )
            customer_store = CustomerStore(
                stores.database, lambda: customer_reason_templates(rules.current)
            )
            await customer_store.ensure_indexes()
            customers = CustomerTagging(rules, customer_store, stores.redis)
            writes.sent.clear()
            writes.written.clear()
            writes.documents.clear()
            mongo_pid = stack_pids().get("mongo")
            mongo_cpu = cpu_seconds(mongo_pid) if mongo_pid else 0.0
            for start in range(0, count, BATCH):
                batch = events[start : start + BATCH]
                await tagging.tag(batch)
                await customers.after_orders(batch)  # as the consumer does after each batch
            if mongo_pid:  # the server's work for what it was sent (its indexes included)
                mongo_cpu = cpu_seconds(mongo_pid) - mongo_cpu
            batches = -(-count // BATCH)
            sent = {f"{c}.{kind}": n / batches for (c, kind), n in sorted(writes.sent.items())}
            stored = await stored_fields(settings, count)
            customer_writes = _customer_writes(writes, count)
            await stores.mongo.drop_database(settings.mongo_database)
            keyed = await store.server.unique_indexes_only()
    finally:
        writes.sent.clear()
    total = sum(stored[name]["bytes_per_order"] for name in COLLECTIONS)
    documents = sum(stored[name]["documents_per_order"] for name in COLLECTIONS)
    return {
        "tagged_orders": count,
        "store": "unique indexes only (tag_keys kept)" if keyed else "MongoDB (full indexes)",
        "bytes_per_order": round(total, 1),
        "documents_per_order": round(documents, 3),
        # with what each order also writes to its customer (and the products' first sales)
        "bytes_per_order_with_customers": round(total + customer_writes["bytes_per_order"], 1),
        "documents_per_order_with_customers": round(
            documents + customer_writes["documents_per_order"], 3
        ),
        "customer_writes": customer_writes,
        "write_commands_per_batch": sent,
        "mongo_server_cpu_us_per_order": round(mongo_cpu / count * 1e6) if mongo_pid else None,
        **stored,
    }


def _customer_writes(writes: WriteCommands, orders: int) -> dict[str, Any]:
    """What the customer step wrote per order: documents inserted or updated, and bytes by
    field (an update counted as what it sets and pushes, not the document it rewrites)."""
    fields: Counter[str] = Counter()
    for (collection, field), size in writes.written.items():
        if collection in CUSTOMER_COLLECTIONS:
            fields[f"{collection}: {field}"] += size
    return {
        "documents_per_order": round(
            sum(writes.documents[name] for name in CUSTOMER_COLLECTIONS) / orders, 3
        ),
        "bytes_per_order": round(sum(fields.values()) / orders, 1),
        "fields_per_order": {key: round(size / orders, 1) for key, size in fields.most_common()},
    }


async def run(count: int) -> dict[str, Any]:
    """Both stores: the local server (``tag_keys`` kept) and a MongoDB (without them); and a
    MongoDB again with what the release before wrote."""
    figures = {
        "local_server": await measure(count, unique_indexes_only=True),
        "mongodb": await measure(count, unique_indexes_only=False),
    }
    with written_as_before():
        figures["mongodb_release_before"] = await measure(count, unique_indexes_only=False)
    return figures


def markdown(figures: dict[str, Any]) -> str:
    """The stored bytes' section of benchmarks.md: per order, by collection and field."""
    local, mongodb = figures["local_server"], figures["mongodb"]
    rows = []
    for name in COLLECTIONS:
        fields = local[name]["fields_per_order"]
        on_mongodb = mongodb[name]["fields_per_order"]
        rows += [
            f"| {name} | `{key}` | {size:,} | {on_mongodb.get(key, 0):,} |"
            for key, size in fields.items()
        ]
    customers = mongodb["customer_writes"]
    customer_rows = [
        f"| {field} | {size:,} |" for field, size in customers["fields_per_order"].items()
    ]
    return "\n".join(
        [
            "",
            "## Bytes written per tagged order",
            "",
            f"The tagger bench's order mix ({local['tagged_orders']:,} orders) tagged by the"
            " tagging use case in process and read back as BSON, each batch's customers then"
            " evaluated and written as the consumer does (`bench/document_bytes.py`): bytes per"
            f" order **{mongodb['bytes_per_order_with_customers']:,}** as written to a MongoDB"
            f" ({mongodb['documents_per_order_with_customers']} documents), of which the order"
            f" and its history {mongodb['bytes_per_order']:,}"
            f" ({mongodb['documents_per_order']} documents; {local['bytes_per_order']:,} on the"
            " local MongoDB-wire server, which also stores `tag_keys` for its order list) and"
            " the customer's update (with the products' first sales; an update counted as what"
            f" it sets, an insert as its document) {customers['bytes_per_order']:,}"
            f" ({customers['documents_per_order']} documents; target ≤ 1,500 in all).",
            *_release_before(figures.get("mongodb_release_before")),
            "",
            "| collection | field | local server, B/order | MongoDB, B/order |",
            "|---|---|---:|---:|",
            *rows,
            "",
            "What each order writes to its customer (an update counted as the fields it sets and"
            " pushes, what a MongoDB's oplog carries; a new customer as its document):",
            "",
            "| collection: write | B/order |",
            "|---|---:|",
            *customer_rows,
            "",
        ]
    )


def _release_before(release_before: dict[str, Any] | None) -> list[str]:
    if not release_before:
        return []
    return [
        "",
        "With the forms written before the 2026-11-27 (night) release (`docs/architecture.md`),"
        " in the same run:"
        f" {release_before['bytes_per_order_with_customers']:,} as written to a MongoDB, of"
        f" which the order {release_before['bytes_per_order']:,} and the customer's update"
        f" {release_before['customer_writes']['bytes_per_order']:,}.",
    ]


def main() -> None:
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    count = int(numbers[0]) if numbers else 2_000
    as_mongodb = False if "--as-mongodb" in sys.argv else None
    forms = written_as_before() if "--release-before" in sys.argv else nullcontext()
    with forms:
        figures = asyncio.run(measure(count, as_mongodb))
    print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

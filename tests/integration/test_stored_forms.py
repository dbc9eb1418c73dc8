"""What the tagger stores on either kind of server (issue #14: bytes per order), on the real
local store: ``tag_keys`` only where the server needs them, the same order list either way, and
orders stored in the earlier form read in full (detail, list, rule diff replay) and rewritten
compact when they next change."""

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from bson.binary import Binary
from fastapi.encoders import jsonable_encoder
from pymongo.asynchronous.database import AsyncDatabase

from bench.written_forms import EARLIER_RELEASES_FORMS, written_as_before
from services.notifier.store import AlertStore
from services.tagger.customers.segments import Segments
from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.queries import OrderFilter, SortKey
from services.tagger.read_model import ReadModel
from services.tagger.rule_changes import ReplayDecoder, ReplayWindow, StoredOrders
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from services.tagger.usage import rule_hit_counts
from shared import stored_tags
from shared.models import OrderStatus
from shared.stored_tags import stored_tag
from tests.factories import make_order

pytestmark = pytest.mark.integration
RULES = load_rules(DEFAULT_RULES_FILE)
TEMPLATES = ReasonTemplates(RULES)
AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
METHODS = ["same_day", "standard", "express"]


def tagged(index: int) -> OrderRecord:
    order = make_order(
        f"SF-{index:03d}",
        shipping={"method": METHODS[index % 3], "province": "上海"},
        created_at=datetime(2026, 11, 1, index % 24, index, tzinfo=UTC).isoformat(),
    )
    figures = FiguresSnapshot(prior_order_count=index % 2)
    change = merge_tags(
        [],
        decide(RULES, order_facts(order, figures, order.status)),
        exclusive_families=RULES.exclusive_families,
        max_tags=20,
        at=AT,
    )
    return OrderRecord(order, order.status, change.tags, figures, applied_events=[f"e{index}"])


def created(record: OrderRecord) -> HistoryEntry:
    return HistoryEntry(record.order.order_no, f"e-{record.order.order_no}", AT, record.tags, [])


async def stored(db: AsyncDatabase[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["order_no"]: d async for d in db["orders"].find({}, {"_id": 0})}


def carries(record: OrderRecord, tag: str) -> bool:
    return tag in {t.name for t in record.tags}


def newest_first(records: list[OrderRecord]) -> list[str]:
    """Order numbers as the list gives them, newest first (ties by order number)."""
    keys = sorted(((r.order.created_at, r.order.order_no) for r in records), reverse=True)
    return [order_no for _, order_no in keys]


async def every_page(model: ReadModel, which: OrderFilter) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        page = await model.page(which, SortKey.NEWEST, 7, cursor)
        found += [o["order_no"] for o in page.orders]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def assert_detail_reads_as_tagged(model: ReadModel, records: Iterable[OrderRecord]) -> None:
    """The order detail gives each record's tags as they were tagged, every field whole."""
    for record in records:
        detail = await model.order(record.order.order_no)
        assert detail is not None
        assert detail["tags"] == [tag.model_dump(mode="json") for tag in record.tags]


async def assert_replay_reads_as_tagged(
    db: AsyncDatabase[dict[str, Any]], records: list[OrderRecord]
) -> None:
    """A rule change's replay reads each stored order's tags as they were tagged."""
    [batch] = [b async for b in StoredOrders(db).batches(ReplayWindow())]
    decode = ReplayDecoder()
    replayed = {decode(document).order_no: decode(document).tags for document in batch}
    for record in records:
        assert [(t.name, t.family, t.rule_id) for t in replayed[record.order.order_no]] == [
            (t.name, t.family, t.rule_id) for t in record.tags
        ]


async def test_the_local_server_is_told_apart_and_keeps_tag_keys_for_its_order_list(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = OrderStore(mongo_db, lambda: TEMPLATES)
    records = [tagged(i) for i in range(5)]

    await store.ensure_indexes()
    assert await store.save(records, [created(r) for r in records]) == set()

    assert await store.server.unique_indexes_only()  # mongo-java-server: no gitVersion
    indexes = await mongo_db["orders"].index_information()
    assert any(spec["key"] == [("tag_keys", 1)] for spec in indexes.values())
    for record, document in zip(records, (await stored(mongo_db)).values(), strict=True):
        names = sorted(tag.name for tag in record.tags)
        assert document["tag_keys"] == [f"{n}\x1f{record.order.order_no}" for n in names]


async def test_as_for_a_mongodb_no_tag_keys_are_kept_and_the_list_is_the_same(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    records = [tagged(i) for i in range(30)]

    await store.ensure_indexes()
    assert await store.save(records, [created(r) for r in records]) == set()

    indexes = await mongo_db["orders"].index_information()
    keys = [spec["key"] for spec in indexes.values()]
    assert [("tag_names", 1), ("created_at", -1)] in keys  # serves the list on MongoDB
    assert not any(key[0][0] == "tag_keys" for key in keys)
    assert not any("tag_keys" in document for document in (await stored(mongo_db)).values())
    plain = ReadModel(mongo_db, timeline_min_orders=1, unique_indexes_only=False)
    walked = ReadModel(mongo_db, timeline_min_orders=1, unique_indexes_only=True)
    for which in (OrderFilter(all_tags=["urgent"]), OrderFilter(none_tags=["urgent"])):
        wanted = bool(which.all_tags)
        expected = newest_first([r for r in records if carries(r, "urgent") == wanted])
        assert await every_page(plain, which) == expected
        assert await every_page(walked, which) == expected  # unkeyed orders: read by number


def earlier_form(record: OrderRecord) -> dict[str, Any]:
    """The order as stored before tags left out their names (main at 17211a6)."""
    with written_as_before(EARLIER_RELEASES_FORMS):  # each switched field as then
        document = record.to_document(TEMPLATES, keyed=True)
        document["tags"] = [stored_tag(tag, TEMPLATES, name_key="name") for tag in record.tags]
    del document["tags_rule_version"]
    no = record.order.order_no
    document["tag_keys"] = [f"\x1f{no}", *(f"{n}\x1f{no}" for n in sorted(document["tag_names"]))]
    document["contribution_reversed"] = False
    return {**document, "version": 1}


async def test_orders_stored_in_the_earlier_form_read_in_full_and_are_rewritten_compact(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    records = [tagged(i) for i in range(6)]
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    await mongo_db["orders"].insert_many([earlier_form(r) for r in records])
    await mongo_db["tag_history"].insert_many(
        [
            {
                "order_no": r.order.order_no,
                "event_id": f"e-{r.order.order_no}",
                "at": AT,
                "added": [{"tag": t.name} for t in r.tags],
                "removed": [],
                "version": 1,
            }
            for r in records
        ]
    )
    first = records[0]

    # the order detail: every tag with its reason, the history in full
    detail = await ReadModel(mongo_db, templates=lambda: TEMPLATES).order(first.order.order_no)
    assert detail is not None
    assert detail["tags"] == [tag.model_dump(mode="json") for tag in first.tags]
    assert "tag_keys" not in detail
    [entry] = detail["history"]
    assert [t["reason"] for t in entry["added"]] == [t.reason for t in first.tags]
    # the list, either path
    urgent = newest_first([r for r in records if carries(r, "urgent")])
    for unique_only in (True, False):
        model = ReadModel(mongo_db, timeline_min_orders=1, unique_indexes_only=unique_only)
        assert await every_page(model, OrderFilter(all_tags=["urgent"])) == urgent
    # the rule diff replay
    [batch] = [b async for b in StoredOrders(mongo_db).batches(ReplayWindow())]
    decode = ReplayDecoder()
    for document, record in zip(batch, records, strict=True):
        replayed = decode(document)
        assert [(t.name, t.rule_id, t.rule_version) for t in replayed.tags] == [
            (t.name, t.rule_id, t.rule_version) for t in record.tags
        ]

    # the next change writes the compact form, and leaves nothing of the earlier one
    [loaded] = (await store.load([first.order.order_no])).values()
    shipped = OrderRecord(
        loaded.order.model_copy(update={"status": OrderStatus.SHIPPED}),
        OrderStatus.SHIPPED,
        loaded.tags,
        loaded.figures,
        applied_events=[*loaded.applied_events, "e-shipped"],
        version=loaded.version,
        stored=loaded.stored,
    )
    assert await store.save([shipped], []) == set()
    rewritten = (await stored(mongo_db))[first.order.order_no]
    assert "tag_keys" not in rewritten
    assert "contribution_reversed" not in rewritten
    assert all("name" not in tag for tag in rewritten["tags"])
    assert (await store.load([first.order.order_no]))[first.order.order_no].tags == first.tags


async def test_tags_whose_names_hold_their_family_list_read_and_count_as_tags_that_store_it(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The form written now (``WRITE_FAMILY_IN_NAME``: ``status:pending`` by the status rule
    stores neither family nor rule) beside the form written two releases before: the order
    list's family filter, the order detail, the rule hits and the replay read both alike."""
    records = [tagged(i) for i in range(12)]
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    with written_as_before(EARLIER_RELEASES_FORMS):
        assert await store.save(records[:6], []) == set()
    assert await store.save(records[6:], []) == set()
    documents = await stored(mongo_db)
    status = [dict(zip(d["tag_names"], d["tags"], strict=True))["status:pending"]
              for d in documents.values()]  # fmt: skip
    assert status == [{"family": "status"}] * 6 + [{}] * 6

    model = ReadModel(mongo_db, templates=lambda: TEMPLATES, unique_indexes_only=False)
    for family in ("status", "region", "category", "priority"):
        expected = newest_first([r for r in records if any(t.family == family for t in r.tags)])
        assert expected
        assert await every_page(model, OrderFilter(family=family)) == expected
    assert await every_page(model, OrderFilter(family="risk")) == []
    await assert_detail_reads_as_tagged(model, (records[0], records[-1]))
    hits = {row["rule_id"]: row["orders"] for row in await rule_hit_counts(mongo_db)}
    assert hits["status"] == hits["region"] == hits["category"] == 12
    assert "manual" not in hits
    await assert_replay_reads_as_tagged(mongo_db, records)


async def test_orders_whose_event_ids_are_stored_as_uuids_read_them_as_strings(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The form written now (``WRITE_BINARY_EVENT_IDS``): the tagger's loads, the order detail
    and the notifier's order page answer the ids as the events named them (a redelivery on the
    form before: ``test_tagger``)."""
    records = [tagged(i) for i in range(3)]
    for record in records:
        record.applied_events = [str(uuid4()), str(uuid4())]
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    assert await store.save(records, []) == set()
    raw = await mongo_db["orders"].find_one({"order_no": records[0].order.order_no})
    assert raw is not None
    assert all(isinstance(event_id, Binary) for event_id in raw["applied_events"])

    loaded = await store.load([r.order.order_no for r in records])
    for record in records:
        assert loaded[record.order.order_no].applied_events == record.applied_events
    detail = await ReadModel(mongo_db, templates=lambda: TEMPLATES).order(records[0].order.order_no)
    assert detail is not None
    assert detail["applied_events"] == records[0].applied_events
    json.dumps(jsonable_encoder(detail))  # as the Tag API answers it
    page = await AlertStore(mongo_db).order_of(records[1].order.order_no)
    assert page is not None
    assert page["applied_events"] == records[1].applied_events
    # and as strings, as two releases before wrote them
    earlier = tagged(7)
    earlier.applied_events = [str(uuid4())]
    with written_as_before(EARLIER_RELEASES_FORMS):
        assert await store.save([earlier], []) == set()
    raw = await mongo_db["orders"].find_one({"order_no": earlier.order.order_no})
    assert raw is not None
    assert raw["applied_events"] == earlier.applied_events
    detail = await ReadModel(mongo_db, templates=lambda: TEMPLATES).order(earlier.order.order_no)
    page = await AlertStore(mongo_db).order_of(earlier.order.order_no)
    assert detail is not None
    assert page is not None
    assert detail["applied_events"] == page["applied_events"] == earlier.applied_events


async def test_tags_whose_values_are_the_orders_facts_read_with_their_reasons_everywhere(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The form written now (``WRITE_ARGS_FROM_FACTS``: a reason's values the order's own
    facts give again are not stored) beside the release before's: the tagger's loads, the
    order detail and the notifier's order page give every reason as it was given, and the
    notifier still shows neither the customer nor the figures."""
    records = [tagged(i) for i in range(6)]
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    # as the release before wrote it
    with written_as_before([(stored_tags, "WRITE_ARGS_FROM_FACTS")]):
        assert await store.save(records[:3], []) == set()
    assert await store.save(records[3:], []) == set()
    documents = await stored(mongo_db)
    regions = [dict(zip(d["tag_names"], d["tags"], strict=True))["region:east-china"]
               for d in documents.values()]  # fmt: skip
    assert ["args" in region for region in regions] == [True] * 3 + [False] * 3

    loaded = await store.load([r.order.order_no for r in records])
    model = ReadModel(mongo_db, templates=lambda: TEMPLATES)
    for record in records:
        order_no = record.order.order_no
        assert loaded[order_no].tags == record.tags
        detail = await model.order(order_no)
        assert detail is not None
        assert detail["tags"] == [tag.model_dump(mode="json") for tag in record.tags]
        page = await AlertStore(mongo_db).order_of(order_no, TEMPLATES)
        assert page is not None
        assert [t["reason"] for t in page["tags"]] == [t.reason for t in record.tags]
        assert "customer" not in page["order"]
        assert "figures" not in page


async def test_tags_whose_rules_id_names_their_family_list_read_and_count_as_before(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The form written now (``WRITE_FAMILY_IN_RULE``: ``customer.returning``'s tag stores
    the id as ``rule`` and no family) beside the release before's: the family filter, the
    order detail, the rule hits and the replay read both alike."""
    records = [tagged(i) for i in range(12)]
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    # as the release before wrote it
    with written_as_before([(stored_tags, "WRITE_FAMILY_IN_RULE")]):
        assert await store.save(records[:6], []) == set()
    assert await store.save(records[6:], []) == set()
    documents = await stored(mongo_db)
    assert sum("rule" in tag for d in documents.values() for tag in d["tags"]) >= 6 * 2

    model = ReadModel(mongo_db, templates=lambda: TEMPLATES, unique_indexes_only=False)
    families = {t.family for r in records for t in r.tags if t.family}
    assert {"customer", "priority", "order-type"} <= families
    for family in families:
        expected = newest_first([r for r in records if any(t.family == family for t in r.tags)])
        assert await every_page(model, OrderFilter(family=family)) == expected, family
    assert await every_page(model, OrderFilter(family="default")) == []
    await assert_detail_reads_as_tagged(model, (records[0], records[-1]))
    hits = {row["rule_id"]: row["orders"] for row in await rule_hit_counts(mongo_db)}
    given = Counter(t.rule_id for r in records for t in r.tags)
    assert hits == dict(given)
    await assert_replay_reads_as_tagged(mongo_db, records)


async def test_orders_in_the_default_currency_store_none_beside_the_order_and_show_it(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The form written now (``WRITE_CURRENCY_WHEN_NOT_DEFAULT``): the order list, its
    detail, the notifier's page and the customer's page show the default currency of an
    order that stores none, and another currency as stored."""
    records = [tagged(0), tagged(1)]
    usd = records[1].order.pricing.model_copy(update={"currency": "USD"})
    records[1].order = records[1].order.model_copy(update={"pricing": usd})
    store = OrderStore(mongo_db, lambda: TEMPLATES, unique_indexes_only=False)
    await store.ensure_indexes()
    assert await store.save(records, []) == set()
    documents = await stored(mongo_db)
    cny, dollars = (documents[r.order.order_no] for r in records)
    assert "currency" not in cny
    assert dollars["currency"] == "USD"

    model = ReadModel(mongo_db, templates=lambda: TEMPLATES)
    page = await model.page(OrderFilter(), SortKey.NEWEST, 10, None)
    assert {o["order_no"]: o["currency"] for o in page.orders} == {
        records[0].order.order_no: "CNY",
        records[1].order.order_no: "USD",
    }
    for record, currency in zip(records, ("CNY", "USD"), strict=True):
        detail = await model.order(record.order.order_no)
        assert detail is not None
        assert detail["currency"] == currency
        alert_page = await AlertStore(mongo_db).order_of(record.order.order_no)
        assert alert_page is not None
        assert alert_page["currency"] == currency
    customer_id = records[0].order.customer.id
    assert {r.order.customer.id for r in records} == {customer_id}
    await mongo_db["customers"].insert_one({"_id": customer_id, "orders": 2, "version": 1})
    customer = await Segments(mongo_db, None).customer(customer_id)
    assert customer is not None
    listed = {o["order_no"]: o["currency"] for o in customer["orders_list"]}
    assert listed == {records[0].order.order_no: "CNY", records[1].order.order_no: "USD"}

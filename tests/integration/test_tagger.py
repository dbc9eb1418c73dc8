"""The tagger on the real stack: tags and figures exact, idempotent under replay, dead letters."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import httpx
import pytest
from bson.binary import Binary
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bench.written_forms import EARLIER_RELEASES_FORMS, RELEASE_BEFORE_FORMS
from services.tagger.customers.segments import Segments
from services.tagger.figures import CustomerFigures, rebuild_figures
from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.read_model import ReadModel
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.regions import region_of
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from services.tagger.store import OrderStore
from shared import stored_tags
from shared.events import OrderCreated, OrderTagged, StatusChanged
from shared.models import OrderStatus
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.conftest import (
    assert_figures_exact,
    publish_events,
    read_topic,
    stored_orders,
    wait_for_orders,
)

pytestmark = pytest.mark.integration


def write_release_before_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored forms the release before this one wrote, which this one still reads
    (``docs/architecture.md``): every reason value stored, a rule tag's family and rule id
    stored apart (a customer's tag with its first rule version), the figures under their
    long names, the default currency beside the order."""
    for module, name in RELEASE_BEFORE_FORMS:
        monkeypatch.setattr(module, name, False)
    monkeypatch.setattr(stored_tags, "_tag_forms", {})


def write_two_releases_before_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The release before that one's, also still read: tags named by their family storing
    it, event ids as strings."""
    for module, name in EARLIER_RELEASES_FORMS:
        monkeypatch.setattr(module, name, False)
    monkeypatch.setattr(stored_tags, "_tag_forms", {})


async def send_through_ingest(
    client: httpx.AsyncClient, events: list[OrderCreated | StatusChanged]
) -> None:
    """In stream order: runs of new orders as batches, each status change after its run."""
    run: list[dict[str, Any]] = []

    async def flush() -> None:
        if run:
            answer = await client.post("/orders/batch", json={"orders": run})
            assert answer.json()["accepted"] == len(run)
            run.clear()

    for event in events:
        if isinstance(event, OrderCreated):
            run.append(event.order.model_dump(mode="json"))
            if len(run) == 500:
                await flush()
            continue
        await flush()
        answer = await client.post(
            f"/orders/{event.order_no}/status", json={"status": event.status.value}
        )
        assert answer.status_code == 202
    await flush()


async def test_thousands_of_orders_are_tagged_and_counted_exactly(
    tagger: Any,
    ingest_client: httpx.AsyncClient,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    events, expected = order_stream(2000, customers=150, seed=7, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]
    cancelled = {e.order_no for e in events if isinstance(e, StatusChanged)}

    async with tagger():  # ingest → Kafka → tagger, all real
        await send_through_ingest(ingest_client, events)
        orders = await wait_for_orders(mongo_db, len(created), len(events))

    for event in created:
        order = event.order
        tags = set(orders[order.order_no]["tag_names"])
        prior = expected.prior_orders[order.order_no]
        is_cancelled = order.order_no in cancelled
        fast = order.shipping.method.value in {"express", "same_day"}
        assert ("urgent" in tags) is (fast and not is_cancelled), order.order_no
        assert len(tags & {"urgent", "regular"}) == 1
        assert ("new-customer" in tags) is (prior == 0)
        assert ("returning-customer" in tags) is (prior > 0)
        assert ("big-customer" in tags) is (order.pricing.total >= 50000)
        assert f"region:{region_of(order.shipping.province)}" in tags
        assert f"status:{'cancelled' if is_cancelled else 'pending'}" in tags
        assert f"category:{order.lines[0].category}" in tags

    await assert_figures_exact(redis_client, expected)


@pytest.mark.parametrize("forms", ["written now", "the release before's", "two releases before's"])
async def test_the_same_events_delivered_twice_change_nothing(
    forms: str,
    monkeypatch: pytest.MonkeyPatch,
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    """Also on the forms the two releases before wrote (``docs/architecture.md``), which
    this one reads and writes back in its own when an order changes."""
    if forms == "the release before's":
        write_release_before_forms(monkeypatch)
    elif forms == "two releases before's":
        write_two_releases_before_forms(monkeypatch)
    events, expected = order_stream(300, customers=30, seed=11, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]

    async with tagger():
        await publish_events(tagger_settings, events)
        first = await wait_for_orders(mongo_db, len(created), len(events))
        some = next(iter(first.values()))
        written_now = all(isinstance(event_id, Binary) for event_id in some["applied_events"])
        assert written_now is (forms != "two releases before's")
        # tagged events are published after the batch's history is stored
        tagged_before = await read_topic(
            tagger_settings, tagger_settings.topics.tagged, len(events)
        )
        history_before = await mongo_db["tag_history"].count_documents({})

        await publish_events(tagger_settings, events)  # Kafka redelivers everything
        tagged_after = await read_topic(
            tagger_settings, tagger_settings.topics.tagged, 2 * len(events)
        )
        second = await stored_orders(mongo_db)

    def without_write_time(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if k != "updated_at"}

    assert {k: without_write_time(v) for k, v in second.items()} == {
        k: without_write_time(v) for k, v in first.items()
    }
    assert await mongo_db["tag_history"].count_documents({}) == history_before
    await assert_figures_exact(redis_client, expected)
    # republished tagged events carry the same ids, so downstream can drop them
    first_ids = {OrderTagged.model_validate_json(r.value).event_id for r in tagged_before}
    all_ids = {OrderTagged.model_validate_json(r.value).event_id for r in tagged_after}
    assert first_ids == all_ids
    assert len(first_ids) == len(events)
    # each order's tags read back as its last tagged event gave them, reasons and all
    templates = ReasonTemplates(load_rules(DEFAULT_RULES_FILE))
    last = {}
    for record in tagged_before:
        event = OrderTagged.model_validate_json(record.value)
        last[event.order_no] = event.tags
    for order_no, document in second.items():
        assert OrderRecord.from_document(document, templates).tags == last[order_no], order_no
    # and each customer's tags and history read back whole, every reason in its words
    customer_templates = ReasonTemplates(load_rules(DEFAULT_RULES_FILE), customer=True)
    segments = Segments(mongo_db, lambda: customer_templates)
    for customer_id in expected.order_count:
        page = await segments.customer(customer_id)
        assert page is not None
        entries = [*page["tags"], *page["history"]]
        assert entries
        for entry in entries:
            assert entry["rule_version"] == (1 if entry["source"] == "rule" else None)
            assert not entry["reason"].startswith("rule "), entry


async def test_an_order_created_again_after_its_claim_expired_changes_nothing(
    tagger: Any,
    ingest_client: httpx.AsyncClient,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    """Ingest keeps a claim per order for its retention only (``docs/capacity.md`` says how
    short it may be), and Redis may lose claims: an order sent again afterwards is accepted
    with a new event, and the tagger neither counts it again nor takes the shop's stale copy
    over what happened since (a cancelled order stays cancelled)."""
    events, expected = order_stream(200, customers=20, seed=5, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]
    assert any(isinstance(e, StatusChanged) for e in events)
    resend = {"orders": [e.order.model_dump(mode="json") for e in created]}

    async with tagger():
        await send_through_ingest(ingest_client, events)
        first = await wait_for_orders(mongo_db, len(created), len(events))
        claims = [k async for k in redis_client.scan_iter(match=f"ingest:order:{run_id}-*")]
        assert len(claims) == len(created)
        await redis_client.delete(*claims)  # the retention ran out
        ignored_before = created_again_count()

        answer = await ingest_client.post("/orders/batch", json=resend)
        assert answer.json()["accepted"] == len(created)

        async def all_seen() -> bool:
            return created_again_count() - ignored_before >= len(created)  # a redelivery: more

        await eventually(all_seen, within=60)

    assert await stored_orders(mongo_db) == first
    await assert_figures_exact(redis_client, expected)


def created_again_count() -> float:
    return (
        REGISTRY.get_sample_value("ordertag_tagger_events_total", {"outcome": "created_again"})
        or 0.0
    )


async def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_rest_flows(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    from aiokafka import AIOKafkaProducer

    events, _ = order_stream(20, customers=3, seed=3, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]

    async with tagger():
        producer = AIOKafkaProducer(bootstrap_servers=tagger_settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(tagger_settings.topics.orders, b"{not json", key=b"x")
            await producer.send_and_wait(
                tagger_settings.topics.orders, b'{"event_type": "order.created"}', key=b"x"
            )
        finally:
            await producer.stop()
        await publish_events(tagger_settings, events)
        await wait_for_orders(mongo_db, len(created), len(events))
        dead = await read_topic(tagger_settings, tagger_settings.topics.dead_letter, 2)

    assert sorted(r.value for r in dead) == sorted(
        [b"{not json", b'{"event_type": "order.created"}']
    )
    headers = dict(dead[0].headers)
    assert headers["x-original-topic"] == tagger_settings.topics.orders.encode()
    assert {"x-original-partition", "x-original-offset", "x-error"} <= set(headers)


async def test_status_change_to_shipped_ends_urgent_and_records_history(
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    from tests.factories import make_order

    order = make_order(f"{run_id}-1", shipping={"method": "same_day", "province": "上海"})
    shipped = StatusChanged(
        order_no=order.order_no, customer_id=order.customer.id, status=OrderStatus.SHIPPED
    )

    async with tagger():
        await publish_events(tagger_settings, [OrderCreated(order=order), shipped])
        stored = await wait_for_orders(mongo_db, 1, 2)

    assert {"regular", "status:shipped"} <= set(stored[order.order_no]["tag_names"])
    change = await mongo_db["tag_history"].find_one(
        {"order_no": order.order_no, "event_id": str(shipped.event_id)}
    )
    assert change is not None
    assert {t["tag"] for t in change["removed"]} == {"urgent", "status:pending"}
    # stored compact; read in full as the Tag API answers it (why, which rule, the reason)
    templates = ReasonTemplates(load_rules(DEFAULT_RULES_FILE))
    detail = await ReadModel(mongo_db, templates=lambda: templates).order(order.order_no)
    assert detail is not None
    created = next(e for e in detail["history"] if e["event_id"] != str(shipped.event_id))
    urgent = next(t for t in created["added"] if t["tag"] == "urgent")
    assert (urgent["rule_id"], urgent["reason"]) == (
        "priority.fast-shipping",
        "same_day shipping → urgent",
    )
    catalog = await mongo_db["tag_catalog"].find({}, {"_id": 0, "name": 1}).to_list(None)
    assert {"urgent", "regular", "vip", "risk:velocity"} <= {c["name"] for c in catalog}


@pytest.mark.parametrize("forms", ["written now", "the release before's"])
async def test_rebuilt_figures_equal_the_live_ones(
    forms: str,
    monkeypatch: pytest.MonkeyPatch,
    tagger: Any,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    redis_client: Redis,
    run_id: str,
) -> None:
    if forms == "the release before's":
        write_release_before_forms(monkeypatch)
    events, expected = order_stream(400, customers=25, seed=5, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]
    async with tagger():
        await publish_events(tagger_settings, events)
        await wait_for_orders(mongo_db, len(created), len(events))
    figures = CustomerFigures(redis_client)
    live = {c: await figures.totals(c) for c in expected.order_count}

    await rebuild_figures(redis_client, OrderStore(mongo_db).all_orders())

    rebuilt = {c: await figures.totals(c) for c in expected.order_count}
    assert rebuilt == live
    assert sum(t.lifetime_spend for t in rebuilt.values()) == sum(
        expected.lifetime_spend.values(), Decimal(0)
    )


async def test_a_write_that_lost_a_race_is_detected_not_applied(
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    from dataclasses import replace

    from services.tagger.rules.facts import FiguresSnapshot
    from services.tagger.store import OrderStore
    from tests.factories import make_order

    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    order = make_order(f"{run_id}-1")
    assert await store.save([OrderRecord(order, order.status, [], FiguresSnapshot())], []) == set()
    [mine] = (await store.load([order.order_no])).values()
    [theirs] = (await store.load([order.order_no])).values()
    theirs_id, mine_id = str(uuid4()), str(uuid4())
    assert await store.save([replace(theirs, applied_events=[theirs_id])], []) == set()
    same_event = HistoryEntry(order.order_no, theirs_id, datetime.now(UTC), [], [])
    own_event = HistoryEntry(order.order_no, mine_id, datetime.now(UTC), [], [])

    lost = await store.save([replace(mine, applied_events=[mine_id])], [same_event, own_event])

    assert lost == {order.order_no}
    [stored] = (await store.load([order.order_no])).values()
    assert (stored.applied_events, stored.version) == ([theirs_id], 2)
    # the entry of the event the winner applied stays (it describes its change); ours goes
    kept = [e["event_id"] async for e in mongo_db["tag_history"].find({"order_no": order.order_no})]
    assert kept == [theirs_id]


async def test_two_writers_of_a_new_order_one_wins_the_other_is_told(
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    """A new order is a plain insert: a second writer that also saw no document collides with
    the unique order number and is reported as a lost race, not silently dropped."""
    from services.tagger.order_record import OrderRecord
    from services.tagger.rules.facts import FiguresSnapshot
    from tests.factories import make_order

    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    order = make_order(f"{run_id}-new")
    first = OrderRecord(order, order.status, [], FiguresSnapshot(), applied_events=["a"])
    second = OrderRecord(order, order.status, [], FiguresSnapshot(), applied_events=["b"])

    outcomes = await asyncio.gather(store.save([first], []), store.save([second], []))

    assert sorted(len(lost) for lost in outcomes) == [0, 1]
    [stored] = (await store.load([order.order_no])).values()
    assert stored.version == 1
    assert stored.applied_events in (["a"], ["b"])


async def test_figures_rebuild_reads_a_store_larger_than_one_server_reply(
    mongo_db: AsyncDatabase[dict[str, Any]], redis_client: Redis, run_id: str
) -> None:
    """Over 48 MB of orders: the local server would answer an unbatched scan in one reply,
    which PyMongo refuses."""
    from services.tagger.order_record import OrderRecord
    from services.tagger.rules.facts import FiguresSnapshot
    from tests.factories import make_order

    template = OrderRecord(
        make_order(f"{run_id}-0", notes="x" * 3900), OrderStatus.PENDING, [], FiguresSnapshot()
    ).to_document()
    count = 10_000
    documents = [
        {
            **template,
            "order_no": f"{run_id}-{i}",
            "order": {**template["order"], "order_no": f"{run_id}-{i}"},
        }
        for i in range(count)
    ]
    await mongo_db["orders"].insert_many(documents)

    assert await rebuild_figures(redis_client, OrderStore(mongo_db).all_orders()) == count
    totals = await CustomerFigures(redis_client).totals(template["customer_id"])
    assert totals.order_count == count

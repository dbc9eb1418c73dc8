"""Customer tags kept current from the order stream, on the real Redis (figures.lua) and MongoDB:
each customer rule on event sequences, replay, out-of-order status changes, and lapsed
customers found by the review on a clock."""

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.tagger.customers.model import CustomerRecord
from services.tagger.customers.store import CustomerStore
from services.tagger.customers.stored import change_of, readable_tag
from services.tagger.customers.tagging import CustomerTagging
from services.tagger.figure_keys import epoch_keys, keys_of
from services.tagger.figures import CustomerFigures, FiguresLost
from services.tagger.rules.book import RuleBook
from services.tagger.rules.reasons import customer_reason_templates
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from services.tagger.tagging import OrderEventModel, TaggingService
from shared.events import OrderCreated, OrderUpdated, StatusChanged
from shared.models import OrderStatus
from tests.factories import customer_order

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> float:
        return self.now.timestamp()


@dataclass
class Pipeline:
    """The consumer's two steps (tag the orders, then their customers) without Kafka."""

    tagging: TaggingService
    customers: CustomerTagging
    store: CustomerStore
    clock: Clock
    rules: RuleBook

    async def feed(self, *events: OrderEventModel) -> None:
        await self.tagging.tag(list(events))
        await self.customers.after_orders(list(events))

    async def tags(self, customer_id: str) -> dict[str, dict[str, Any]]:
        """The customer's tags as the Tag API shows them (stored compact, read back whole)."""
        document = await self.store.document(customer_id)
        assert document is not None, f"no customer {customer_id}"
        templates = customer_reason_templates(self.rules.current)
        return {tag["name"]: readable_tag(tag, templates) for tag in document["tags"]}


@pytest.fixture
async def pipeline(
    mongo_db: AsyncDatabase[dict[str, Any]], redis_client: Redis
) -> AsyncIterator[Pipeline]:
    rules = RuleBook(Path(DEFAULT_RULES_FILE))
    orders = OrderStore(mongo_db)
    await orders.ensure_indexes()
    store = CustomerStore(mongo_db, lambda: customer_reason_templates(rules.current))
    await store.ensure_indexes()
    clock = Clock(START)
    tagging = TaggingService(rules, CustomerFigures(redis_client), orders, max_tags=20)
    return Pipeline(
        tagging, CustomerTagging(rules, store, redis_client, clock), store, clock, rules
    )


def order(
    run_id: str,
    number: int,
    customer: str,
    when: datetime,
    lines: list[tuple[str, str, str]] | None = None,
) -> OrderCreated:
    """An order of ``lines`` (sku, category, price each), created at ``when``."""
    made = customer_order(f"{run_id}-{number}", f"{run_id}-{customer}", when, lines)
    return OrderCreated(order=made, occurred_at=when)


async def test_lifecycle_follows_orders_and_a_replay_changes_nothing(
    pipeline: Pipeline, run_id: str
) -> None:
    customer = f"{run_id}-A"
    first = order(run_id, 1, "A", START)
    await pipeline.feed(first)
    assert set(await pipeline.tags(customer)) == {"lifecycle:new", "early-adopter"}

    pipeline.clock.now = START + 10 * DAY
    second = order(run_id, 2, "A", START + 10 * DAY)
    await pipeline.feed(second)
    tags = await pipeline.tags(customer)
    assert "lifecycle:returning" in tags
    assert "lifecycle:new" not in tags
    assert tags["lifecycle:returning"]["rule_id"] == "lifecycle.returning"
    assert tags["lifecycle:returning"]["reason"] == "2 orders → returning"
    before = await pipeline.store.document(customer)

    await pipeline.feed(first, second)  # redelivered: figures and tags as they were

    after = await pipeline.store.document(customer)
    assert after is not None
    assert before is not None
    assert after["orders"] == 2
    assert after["spend_cents"] == 20000
    assert after["tags"] == before["tags"]
    assert after["history"] == before["history"]
    assert [(change_of(h), h["tag"]) for h in after["history"]] == [
        ("added", "lifecycle:new"),
        ("added", "early-adopter"),
        ("added", "lifecycle:returning"),
        ("added", "prefers:electronics"),
        ("added", "product:ph-1"),
        ("removed", "lifecycle:new"),
    ]


async def test_a_cancellation_counts_once_whatever_order_the_events_come_in(
    pipeline: Pipeline, run_id: str
) -> None:
    customer = f"{run_id}-B"
    first = order(run_id, 1, "B", START)
    second = order(run_id, 2, "B", START + DAY)
    cancel = StatusChanged(
        order_no=second.order_no,
        customer_id=customer,
        status=OrderStatus.CANCELLED,
        occurred_at=START + 3 * DAY,
    )
    # an update of the second order, sent before the cancellation but delivered after it
    late_update = OrderUpdated(order=second.order, occurred_at=START + 2 * DAY)
    await pipeline.feed(first, second)
    assert "lifecycle:returning" in await pipeline.tags(customer)

    await pipeline.feed(cancel)
    await pipeline.feed(late_update, cancel)

    document = await pipeline.store.document(customer)
    assert document is not None
    assert document["orders"] == 1
    assert document["spend_cents"] == 10000
    assert "lifecycle:new" in {t["name"] for t in document["tags"]}


async def test_category_and_product_preferences_and_behaviour(
    pipeline: Pipeline, run_id: str
) -> None:
    customer = f"{run_id}-C"
    home = [("SOFA-1", "Home-Goods", "3000.00"), ("LAMP-2", "home-goods", "500.00")]
    for number in range(4):
        when = START + number * 7 * DAY
        pipeline.clock.now = when
        lines = home if number < 3 else [("PH-9", "electronics", "15000.00")]
        await pipeline.feed(order(run_id, number, "C", when, lines))

    tags = await pipeline.tags(customer)
    assert (
        tags["prefers:home-goods"]["reason"] == "home-goods: 3 orders, 0.41 of spend over 365 days"
    )
    assert "prefers:electronics" in tags  # 15,000 of 25,500: ≥ 40% of the spend
    assert "product:sofa-1" in tags
    assert "product:ph-9" not in tags
    assert "frequent-buyer" in tags  # 4 orders within 90 days
    assert "high-spender" in tags  # 25,500 ≥ 20,000 over 365 days
    document = await pipeline.store.document(customer)
    assert document is not None
    assert document["top_category"] == "electronics"


async def test_early_adopter_only_within_14_days_of_a_products_first_sale(
    pipeline: Pipeline, run_id: str
) -> None:
    launch = [(f"NEW-{run_id}", "gadgets", "99.00")]
    await pipeline.feed(order(run_id, 1, "first", START, launch))
    await pipeline.feed(order(run_id, 2, "early", START + 10 * DAY, launch))
    await pipeline.feed(order(run_id, 3, "late", START + 20 * DAY, launch))

    assert "early-adopter" in await pipeline.tags(f"{run_id}-early")
    assert "early-adopter" not in await pipeline.tags(f"{run_id}-late")
    reason = (await pipeline.tags(f"{run_id}-early"))["early-adopter"]["reason"]
    assert reason == f"bought NEW-{run_id} 10 days after its first sale (≤ 14)"


async def test_lapsed_customers_are_found_by_the_review_on_a_clock(
    pipeline: Pipeline, run_id: str
) -> None:
    customer = f"{run_id}-D"
    pipeline.clock.now = START + DAY
    await pipeline.feed(order(run_id, 1, "D", START), order(run_id, 2, "D", START + DAY))
    assert "lifecycle:returning" in await pipeline.tags(customer)
    document = await pipeline.store.document(customer)
    assert document is not None
    # the first order's day leaves the 30-day spend window at midnight 30 days on: the first
    # review is then
    assert document["next_review_at"] == datetime(2026, 3, 31, tzinfo=UTC)

    pipeline.clock.now = START + DAY + 90 * DAY  # exactly 90 days: not lapsed yet
    while await pipeline.customers.sweep() > 0:
        pass
    assert "lifecycle:lapsed" not in await pipeline.tags(customer)

    # a minute past 90 days, at the review the last one scheduled: lapsed (a fact rounded to
    # 0.01 day read 90.0 for the first 7 minutes, and the review after that was months away)
    pipeline.clock.now = START + DAY + 90 * DAY + timedelta(minutes=1)
    assert await pipeline.customers.sweep() >= 1
    tags = await pipeline.tags(customer)
    assert "lifecycle:lapsed" in tags
    assert "lifecycle:returning" not in tags
    assert tags["lifecycle:lapsed"]["reason"] == "no order for 91 days (> 90) → lapsed"
    assert tags["lifecycle:lapsed"]["at"].startswith((START + 91 * DAY).date().isoformat())

    pipeline.clock.now = START + 100 * DAY  # back in the shop: returning again at once
    await pipeline.feed(order(run_id, 3, "D", START + 100 * DAY))
    tags = await pipeline.tags(customer)
    assert "lifecycle:returning" in tags
    assert "lifecycle:lapsed" not in tags


async def test_a_rebuild_from_mongodb_gives_the_same_category_and_product_figures(
    pipeline: Pipeline, redis_client: Redis, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    home = [("SOFA-1", "home-goods", "3000.00"), ("PH-1", "electronics", "10.00")]
    first, second = order(run_id, 1, "E", START, home), order(run_id, 2, "E", START + DAY)
    cancel = StatusChanged(
        order_no=first.order_no,
        customer_id=f"{run_id}-E",
        status=OrderStatus.CANCELLED,
        occurred_at=START + 2 * DAY,
    )
    changed = first.order.model_copy(update={"lines": first.order.lines[:1]})
    await pipeline.feed(first, second, OrderUpdated(order=changed, occurred_at=START + DAY))
    await pipeline.feed(cancel)
    keys = keys_of(f"{run_id}-E")[1:]

    async def figures() -> list[Any]:
        async with redis_client.pipeline(transaction=False) as pipe:
            for key in keys:
                if key.endswith(":recent"):
                    pipe.zrange(key, 0, -1, withscores=True)
                else:
                    pipe.hgetall(key)
            return list(await pipe.execute())

    live = await figures()
    by_category, products = live[3], live[4]
    day = int((START + DAY).timestamp() // 86_400)  # the first order was cancelled: the second
    assert by_category == {
        f"o|{day}|electronics".encode(): b"1",
        f"c|{day}|electronics".encode(): b"10000",
    }
    assert products == {b"PH-1": repr((START + DAY).timestamp()).encode()}

    await CustomerFigures(redis_client).rebuild(OrderStore(mongo_db).all_orders())

    assert await figures() == live


async def test_a_stale_write_loses_and_the_evaluation_keeps_a_manual_tag_made_meanwhile(
    pipeline: Pipeline, run_id: str
) -> None:
    customer = f"{run_id}-F"
    await pipeline.feed(order(run_id, 1, "F", START))
    stale = (await pipeline.store.load([customer]))[customer]
    await pipeline.customers.tag_by_hand(customer, "vip", by="王小明", reason="生日")

    lost = await pipeline.store.save_many([(stale, {}, [])])  # read before the manual tag
    assert lost == {customer}
    fresh = CustomerRecord(f"{run_id}-new")
    assert await pipeline.store.save_many([(fresh, {}, [])]) == set()
    assert await pipeline.store.save_many([(CustomerRecord(f"{run_id}-new"), {}, [])]) == {
        f"{run_id}-new"
    }  # created meanwhile by another writer

    await pipeline.feed(order(run_id, 2, "F", START + DAY))
    tags = await pipeline.tags(customer)
    assert tags["vip"]["source"] == "manual"
    assert tags["vip"]["by"] == "王小明"
    assert "lifecycle:returning" in tags


def copy_rules(folder: Path) -> Path:
    rule_file = folder / "rules.yaml"
    rule_file.write_text(Path(DEFAULT_RULES_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    return rule_file


def lapse_after_30_days(rule_file: Path) -> None:
    """The lapsed rule's threshold from 90 to 30 days, as version 2."""
    text = rule_file.read_text(encoding="utf-8")
    text = text.replace("days_since_last_order, gt: 90}", "days_since_last_order, gt: 30}")
    text = text.replace(
        "id: lifecycle.lapsed\n    version: 1", "id: lifecycle.lapsed\n    version: 2"
    )
    rule_file.write_text(text, encoding="utf-8")
    later = time.time_ns() + 1_000_000_000  # a new mtime even within the file system's tick
    os.utime(rule_file, ns=(later, later))


async def test_an_edit_of_the_customer_rules_re_evaluates_every_customer_once(
    mongo_db: AsyncDatabase[dict[str, Any]], redis_client: Redis, run_id: str, tmp_path: Path
) -> None:
    rule_file = copy_rules(tmp_path)
    rules = RuleBook(rule_file)
    orders = OrderStore(mongo_db)
    store = CustomerStore(mongo_db, lambda: customer_reason_templates(rules.current))
    await orders.ensure_indexes()
    await store.ensure_indexes()
    clock = Clock(START + 40 * DAY)
    tagging = TaggingService(rules, CustomerFigures(redis_client), orders, max_tags=20)
    customers = CustomerTagging(rules, store, redis_client, clock)
    other_process = CustomerTagging(rules, store, redis_client, clock)
    events = [order(run_id, n, f"G{n}", START) for n in range(3)]
    await tagging.tag(events)
    await customers.after_orders(events)
    assert await customers.sweep() == 3  # the first version recorded: everyone reviewed once
    assert await other_process.sweep() == 0  # ... by one process only

    lapse_after_30_days(rule_file)
    assert rules.reload_if_changed() is True

    assert await other_process.sweep() == 3
    for n in range(3):
        document = await store.document(f"{run_id}-G{n}")
        assert document is not None
        lapsed = document["tags"][0]
        assert (lapsed["name"], lapsed["rule_version"]) == ("lifecycle:lapsed", 2)
    assert await customers.sweep() == 0


async def test_figures_lost_from_redis_never_take_a_customers_tags_away(
    pipeline: Pipeline, redis_client: Redis, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    customer = f"{run_id}-H"
    await pipeline.feed(order(run_id, 1, "H", START), order(run_id, 2, "H", START + DAY))
    before = await pipeline.store.document(customer)
    await redis_client.delete(*epoch_keys())  # as after a FLUSHALL, or while a rebuild runs

    with pytest.raises(FiguresLost):  # without a way to rebuild them: refused, nothing written
        await pipeline.customers.refresh([customer])
    assert await pipeline.store.document(customer) == before

    # the consumer's: rebuild from MongoDB (or wait for the process that does), then evaluate
    figures, orders = CustomerFigures(redis_client), OrderStore(mongo_db)
    rebuilding = CustomerTagging(
        pipeline.rules,
        pipeline.store,
        redis_client,
        pipeline.clock,
        reload_figures=partial(figures.ensure_loaded, orders.all_orders),
    )
    await rebuilding.refresh([customer])
    document = await pipeline.store.document(customer)
    assert document is not None
    assert before is not None
    assert document["orders"] == 2
    assert document["tags"] == before["tags"]

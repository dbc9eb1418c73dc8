"""What tagging a batch's customers asks of MongoDB, counted on the wire (each write command is
a commit, and a sync, on the store): one read of the customers, one of their products' first
sales, one bulk write of the customers (new ones inserted), and a products write only for a
sale earlier than the stored first one. Also: the versioned writes need no (key, version)
index of their own."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.tagger.customers.model import CustomerRecord
from services.tagger.customers.store import CUSTOMER_VERSION_INDEX, CustomerStore
from services.tagger.customers.tagging import CustomerTagging
from services.tagger.figures import CustomerFigures
from services.tagger.rules.book import RuleBook
from services.tagger.rules.reasons import customer_reason_templates
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import ORDER_VERSION_INDEX, OrderStore
from services.tagger.tagging import TaggingService
from shared.events import AppliedTag, OrderCreated, OrderUpdated, StatusChanged, TagSource
from shared.models import OrderStatus
from shared.settings import Settings
from tests.factories import customer_order
from tests.integration.command_log import CommandLog

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Counted:
    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], log: CommandLog, redis: Redis
    ) -> None:
        rules = RuleBook(Path(DEFAULT_RULES_FILE))
        self.database = database
        self.log = log
        self.orders = OrderStore(database)
        self.store = CustomerStore(database, lambda: customer_reason_templates(rules.current))
        self.tagging = TaggingService(rules, CustomerFigures(redis), self.orders, max_tags=20)
        self.customers = CustomerTagging(rules, self.store, redis, lambda: START.timestamp())

    async def feed(self, *events: OrderCreated | OrderUpdated | StatusChanged) -> None:
        await self.tagging.tag(list(events))
        self.log.counts.clear()  # the customers' part only
        await self.customers.after_orders(list(events))


@pytest.fixture
async def counted(settings: Settings, redis_client: Redis) -> AsyncIterator[Counted]:
    log = CommandLog(settings.mongo_database)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000, event_listeners=[log]
    )
    try:
        pipeline = Counted(client[settings.mongo_database], log, redis_client)
        await pipeline.orders.ensure_indexes()
        await pipeline.store.ensure_indexes()
        yield pipeline
    finally:
        await client.drop_database(settings.mongo_database)
        await client.close()


def order(run_id: str, number: int, customer: str, when: datetime, sku: str) -> OrderCreated:
    lines = [(sku, "electronics", "100.00")]
    made = customer_order(f"{run_id}-{number}", f"{run_id}-{customer}", when, lines)
    return OrderCreated(order=made, occurred_at=when)


async def test_a_batch_of_known_customers_and_products_is_one_read_each_and_one_write(
    counted: Counted, run_id: str
) -> None:
    await counted.feed(*(order(run_id, n, f"C{n}", START, "PH-1") for n in range(3)))
    # new customers are plain inserts
    assert counted.log.on("customers") == {"find customers": 1, "insert customers": 1}
    assert counted.log.on("products") == {"find products": 1, "update products": 1}  # new SKU

    later = START + DAY
    await counted.feed(*(order(run_id, 10 + n, f"C{n}", later, "PH-1") for n in range(3)))
    # every versioned write matched: nothing to read back; the SKU's first sale stands
    assert counted.log.on("customers") == {"find customers": 1, "update customers": 1}
    assert counted.log.on("products") == {"find products": 1}
    for n in range(3):
        document = await counted.store.document(f"{run_id}-C{n}")
        assert document is not None
        assert document["orders"] == 2
        assert document["version"] == 2


async def test_a_sale_earlier_than_the_stored_first_one_is_recorded_and_counted_at_once(
    counted: Counted, run_id: str
) -> None:
    launch = f"NEW-{run_id}"
    await counted.feed(order(run_id, 1, "late", START + 20 * DAY, launch))
    assert "early-adopter" in {t["name"] for t in await tags(counted, f"{run_id}-late")}

    # an order made earlier arrives later: the product's first sale moves back to it, and the
    # first customer bought 20 days after it (no early adopter any more once re-evaluated)
    await counted.feed(order(run_id, 2, "early", START, launch))
    assert counted.log.on("products") == {"find products": 1, "update products": 1}
    stored = await counted.database["products"].find_one({"_id": launch})
    assert stored is not None
    assert stored["first_sold_at"] == START.timestamp()
    assert "early-adopter" in {t["name"] for t in await tags(counted, f"{run_id}-early")}
    await counted.customers.refresh([f"{run_id}-late"])
    assert "early-adopter" not in {t["name"] for t in await tags(counted, f"{run_id}-late")}


async def test_a_lost_versioned_write_is_still_told_apart_from_the_ones_that_won(
    counted: Counted, run_id: str
) -> None:
    await counted.feed(*(order(run_id, n, f"C{n}", START, "PH-1") for n in range(2)))
    records = await counted.store.load([f"{run_id}-C0", f"{run_id}-C1"])
    stale = records[f"{run_id}-C0"]
    await counted.customers.tag_by_hand(f"{run_id}-C0", "vip", by="王小明", reason="生日")
    counted.log.counts.clear()

    lost = await counted.store.save_many([(stale, {}, []), (records[f"{run_id}-C1"], {}, [])])

    assert lost == {f"{run_id}-C0"}
    assert counted.log.on("customers") == {"update customers": 1, "find customers": 1}


async def test_the_earlier_key_and_version_indexes_are_dropped_and_writes_still_find_their_own(
    counted: Counted, run_id: str
) -> None:
    database = counted.database
    await database["orders"].create_index(
        [("order_no", ASCENDING), ("version", ASCENDING)], unique=True
    )
    await database["customers"].create_index(
        [("_id", ASCENDING), ("version", ASCENDING)], unique=True
    )
    for _ in range(2):  # a second start finds nothing to drop
        await counted.orders.ensure_indexes()
        await counted.store.ensure_indexes()
    assert ORDER_VERSION_INDEX not in await database["orders"].index_information()
    assert CUSTOMER_VERSION_INDEX not in await database["customers"].index_information()

    first = order(run_id, 1, "A", START, "PH-1")
    await counted.feed(first)
    changed = first.order.model_copy(update={"status": OrderStatus.SHIPPED})
    await counted.feed(OrderUpdated(order=changed, occurred_at=START + DAY))
    stored = await database["orders"].find_one({"order_no": first.order_no})
    assert stored is not None
    assert stored["version"] == 2
    assert stored["status"] == "shipped"


async def tags(counted: Counted, customer_id: str) -> list[dict[str, Any]]:
    document = await counted.store.document(customer_id)
    assert document is not None
    tags: list[dict[str, Any]] = document["tags"]
    return tags


async def test_a_status_change_that_moves_no_figure_writes_no_customer(
    counted: Counted, run_id: str
) -> None:
    placed = order(run_id, 1, "A", START, "PH-1")
    await counted.feed(placed)
    before = await counted.store.document(f"{run_id}-A")

    shipped = StatusChanged(
        order_no=placed.order_no,
        customer_id=f"{run_id}-A",
        status=OrderStatus.SHIPPED,
        occurred_at=START + DAY,
    )
    await counted.feed(shipped)

    assert counted.log.on("customers") == {"find customers": 1}
    assert await counted.store.document(f"{run_id}-A") == before

    cancelled = StatusChanged(
        order_no=placed.order_no,
        customer_id=f"{run_id}-A",
        status=OrderStatus.CANCELLED,
        occurred_at=START + 2 * DAY,
    )
    await counted.feed(cancelled)  # the order no longer counts: the figures and tags move
    assert counted.log.on("customers") == {"find customers": 1, "update customers": 1}
    after = await counted.store.document(f"{run_id}-A")
    assert after is not None
    assert after["orders"] == 0


async def test_a_new_customer_created_meanwhile_loses_its_insert_and_the_others_are_written(
    counted: Counted, run_id: str
) -> None:
    await counted.feed(order(run_id, 1, "old", START, "PH-1"))
    [old] = (await counted.store.load([f"{run_id}-old"])).values()
    taken = CustomerRecord(f"{run_id}-taken")
    assert await counted.store.save_many([(taken, {"orders": 1}, [])]) == set()
    counted.log.counts.clear()

    lost = await counted.store.save_many(
        [
            (CustomerRecord(f"{run_id}-taken"), {"orders": 2}, []),  # created meanwhile
            (CustomerRecord(f"{run_id}-new"), {"orders": 1}, []),
            (old, {"orders": 5}, []),
        ]
    )

    assert lost == {f"{run_id}-taken"}
    assert counted.log.on("customers") == {"insert customers": 1, "update customers": 1}
    documents = {
        doc["_id"]: doc["orders"]
        async for doc in counted.database["customers"].find({}, {"orders": 1})
    }
    assert documents == {f"{run_id}-old": 5, f"{run_id}-taken": 1, f"{run_id}-new": 1}


async def test_a_tag_whose_reason_moved_is_rewritten_in_place_and_reads_back_whole(
    counted: Counted, run_id: str
) -> None:
    customer = f"{run_id}-C0"
    await counted.feed(order(run_id, 1, "C0", START, "PH-1"))
    [record] = (await counted.store.load([customer])).values()
    manual = AppliedTag(name="vip", source=TagSource.MANUAL, by="王小明", reason="生日", at=START)
    record.tags = [*record.tags, manual]
    assert await counted.store.save(record, {}, [])

    [record] = (await counted.store.load([customer])).values()
    record.tags = [*record.tags[:-1], manual.model_copy(update={"reason": "生日，十月"})]
    assert await counted.store.save(record, {}, [])

    # the version's filter keeps positions as read; the server applied the one field
    document = await counted.store.document(customer)
    assert document is not None
    [reread] = (await counted.store.load([customer])).values()
    assert reread.tags == record.tags
    assert document["tags"][-1]["reason"] == "生日，十月"
    assert "args" in document["tags"][0]  # a rule's reason: its template's values
    assert document["version"] == record.version + 1


async def test_tags_added_past_the_end_and_into_a_removed_ones_place_read_back_in_place(
    counted: Counted, run_id: str
) -> None:
    customer = f"{run_id}-C0"
    await counted.feed(order(run_id, 1, "C0", START, "PH-1"))
    [record] = (await counted.store.load([customer])).values()
    held = [tag.name for tag in record.tags]
    made = [
        AppliedTag(name=f"m{n}", source=TagSource.MANUAL, by="王小明", reason="手动", at=START)
        for n in range(12)  # past ten: "tags.10" sorts before "tags.9"
    ]
    record.tags = [*made, *record.tags]  # new ones decided first: they still come after
    assert await counted.store.save(record, {}, [])
    document = await counted.store.document(customer)
    assert document is not None
    assert [tag["name"] for tag in document["tags"]] == [*held, *(t.name for t in made)]

    [record] = (await counted.store.load([customer])).values()
    replacing = made[0].model_copy(update={"name": "m-new"})
    record.tags = [t for t in record.tags if t.name != "m3"] + [replacing]
    assert await counted.store.save(record, {}, [])
    document = await counted.store.document(customer)
    assert document is not None
    names = [*held, *(t.name for t in made)]
    names[names.index("m3")] = "m-new"
    assert [tag["name"] for tag in document["tags"]] == names
    assert document["tag_names"] == names


def named_order(
    run_id: str, number: int, customer: str, when: datetime, sku: str, name: str
) -> OrderCreated:
    made = order(run_id, number, customer, when, sku).order
    line = made.lines[0].model_copy(update={"name": name})
    return OrderCreated(order=made.model_copy(update={"lines": [line]}), occurred_at=when)


async def test_a_products_name_is_written_with_its_first_sale_and_after_only_when_renamed(
    counted: Counted, run_id: str
) -> None:
    sku = f"EAR-{run_id}"
    first = named_order(run_id, 1, "a", START, sku, "耳机")
    await counted.feed(first)
    assert counted.log.on("products") == {"find products": 1, "update products": 1}

    await counted.feed(named_order(run_id, 2, "b", START + DAY, sku, "耳机"))
    assert counted.log.on("products") == {"find products": 1}  # the same name: no write

    await counted.feed(named_order(run_id, 3, "c", START + 2 * DAY, sku, "无线耳机"))
    assert counted.log.on("products") == {"find products": 1, "update products": 1}

    # the first order updated, with the name the product had then: nothing written
    await counted.feed(OrderUpdated(order=first.order, occurred_at=START + 3 * DAY))
    assert counted.log.on("products") == {"find products": 1}
    stored = await counted.database["products"].find_one({"_id": sku})
    assert stored is not None
    assert stored["first_sold_at"] == START.timestamp()
    assert stored["named"] == {"at": (START + 2 * DAY).timestamp(), "name": "无线耳机"}
    assert stored["slug"] == sku.lower()  # as the tag product:<sku> names it


async def test_a_product_stored_before_names_were_kept_is_named_by_its_next_sale(
    counted: Counted, run_id: str
) -> None:
    sku = f"OLD-{run_id}"
    await counted.database["products"].insert_one({"_id": sku, "first_sold_at": 1.0})

    await counted.feed(named_order(run_id, 1, "a", START, sku, "保温杯"))
    assert counted.log.on("products") == {"find products": 1, "update products": 1}
    await counted.feed(named_order(run_id, 2, "b", START + DAY, sku, "保温杯"))
    assert counted.log.on("products") == {"find products": 1}

    stored = await counted.database["products"].find_one({"_id": sku})
    assert stored == {
        "_id": sku,
        "first_sold_at": 1.0,
        "named": {"at": START.timestamp(), "name": "保温杯"},
        "slug": sku.lower(),
    }

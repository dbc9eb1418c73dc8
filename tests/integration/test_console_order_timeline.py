"""The order list's timeline path (candidates by ``order_no`` or ``tag_keys`` in list order,
filtered in Python) answers exactly what the plain MongoDB query answers, page after page, on
the real store, with its indexes."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.console_bench import order_documents
from services.tagger.queries import OrderFilter, SortKey, tag_keys
from services.tagger.read_model import ReadModel
from services.tagger.store import OrderStore

pytestmark = pytest.mark.integration
FILTERS = [
    OrderFilter(all_tags=["urgent"]),
    OrderFilter(all_tags=["vip"], status="pending"),
    OrderFilter(any_tags=["risk:velocity", "risk:amount-anomaly"]),
    OrderFilter(all_tags=["urgent"], region="east-china", amount_min=Decimal("1000")),
    OrderFilter(none_tags=["regular"], amount_max=Decimal("500.50")),
    OrderFilter(
        all_tags=["high-value"],
        created_from=datetime(2026, 1, 1, 12, tzinfo=UTC),
        created_to=datetime(2026, 1, 2, 6, tzinfo=UTC),
    ),
    OrderFilter(all_tags=["no-such-tag"]),
    OrderFilter(all_tags=["vip", "high-value"], none_tags=["urgent"]),
    OrderFilter(any_tags=["vip", "risk:velocity"], status="shipped"),
    OrderFilter(),
]


async def every_page(
    model: ReadModel, which: OrderFilter, limit: int, sort: SortKey = SortKey.NEWEST
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await model.page(which, sort, limit, cursor)
        pages.append([o["order_no"] for o in page.orders])
        assert len(pages) < 200
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", [SortKey.NEWEST, SortKey.OLDEST])
@pytest.mark.parametrize("which", FILTERS, ids=lambda f: str(f.to_mongo()))
async def test_the_timeline_answers_what_the_plain_query_answers(
    mongo_db: AsyncDatabase[dict[str, Any]], which: OrderFilter, sort: SortKey
) -> None:
    documents = order_documents(700, seed=11)
    documents[5]["created_at"] = documents[6]["created_at"]  # a tie, broken by order_no
    for document in documents[::7]:  # stored before orders had tag keys: read by number
        del document["tag_keys"]
    await OrderStore(mongo_db).ensure_indexes()
    await mongo_db["orders"].insert_many(documents)
    plain = ReadModel(mongo_db, timeline_min_orders=10**9)
    timeline = ReadModel(mongo_db, timeline_min_orders=1)

    expected = await every_page(plain, which, 25, sort)
    assert await every_page(timeline, which, 25, sort) == expected
    first = await timeline.page(which, sort, 25)
    assert first.orders == (await plain.page(which, sort, 25)).orders


async def test_tags_changed_after_the_timeline_was_built_are_listed_as_they_are_now(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The timeline keeps only what never changes; which orders carry a tag is read each time."""
    documents = order_documents(400, seed=13)
    await OrderStore(mongo_db).ensure_indexes()
    await mongo_db["orders"].insert_many(documents)
    timeline = ReadModel(mongo_db, timeline_min_orders=1)
    vip = OrderFilter(all_tags=["vip"])
    before = [o["order_no"] for o in (await timeline.page(vip, SortKey.NEWEST, 200)).orders]
    gains = next(d for d in documents[::-1] if "vip" not in d["tag_names"])
    loses = before[0]

    for order_no, names in (
        (gains["order_no"], [*gains["tag_names"], "vip"]),
        (
            loses,
            [
                n
                for n in next(d for d in documents if d["order_no"] == loses)["tag_names"]
                if n != "vip"
            ],
        ),
    ):
        await mongo_db["orders"].update_one(
            {"order_no": order_no},
            {"$set": {"tag_names": names, "tag_keys": tag_keys(order_no, names)}},
        )
    after = [o["order_no"] for o in (await timeline.page(vip, SortKey.NEWEST, 200)).orders]

    assert gains["order_no"] in after
    assert loses not in after
    assert set(after) == set(before) - {loses} | {gains["order_no"]}


async def test_a_new_order_is_listed_at_once_while_the_timeline_catches_up(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    documents = order_documents(300, seed=12)
    await mongo_db["orders"].insert_many(documents[:299])
    timeline = ReadModel(mongo_db, timeline_min_orders=1)
    await timeline.page(OrderFilter(), SortKey.NEWEST, 10)  # builds the timeline

    await mongo_db["orders"].insert_one(documents[299])
    page = await timeline.page(OrderFilter(), SortKey.NEWEST, 10)

    assert page.orders[0]["order_no"] == documents[299]["order_no"]

"""The order list's timeline path (candidates by ``order_no`` newest first, filtered in Python)
answers exactly what the plain MongoDB query answers, page after page, on the real store."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.console_bench import order_documents
from services.tagger.queries import OrderFilter, SortKey
from services.tagger.read_model import ReadModel

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
    OrderFilter(),
]


async def every_page(model: ReadModel, which: OrderFilter, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await model.page(which, SortKey.NEWEST, limit, cursor)
        pages.append([o["order_no"] for o in page.orders])
        assert len(pages) < 200
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


@pytest.mark.parametrize("which", FILTERS, ids=lambda f: str(f.to_mongo()))
async def test_the_timeline_answers_what_the_plain_query_answers(
    mongo_db: AsyncDatabase[dict[str, Any]], which: OrderFilter
) -> None:
    documents = order_documents(700, seed=11)
    documents[5]["created_at"] = documents[6]["created_at"]  # a tie, broken by order_no
    await mongo_db["orders"].insert_many(documents)
    plain = ReadModel(mongo_db, timeline_min_orders=10**9)
    timeline = ReadModel(mongo_db, timeline_min_orders=1)

    expected = await every_page(plain, which, 25)
    assert await every_page(timeline, which, 25) == expected
    first = await timeline.page(which, SortKey.NEWEST, 25)
    assert first.orders == (await plain.page(which, SortKey.NEWEST, 25)).orders


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

"""Four customers' orders for the console's customer pages: 王芳 (a company's, home goods and a
phone), 张伟 (one phone, 3 days ago), 陈静 (a high spender on home goods), 李娜 (phones, long
ago), their lines named by product, tagged by the tagger on the real stack, and the console
served over them. Its ``console_url`` fixture stands in for conftest.py's (120 generated orders)
in the modules that import it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from shared.models import Order
from tests.conftest import eventually
from tests.factories import customer_order
from tests.integration.conftest import publish_events
from tests.integration.console_browser import PASSWORD
from tests.integration.servers import served_app

NOW = datetime.now(UTC)
HOME = [("SOFA-1", "家居", "3000.00"), ("LAMP-2", "家居", "450.00")]
PHONE = [("PH-1", "数码", "2999.00")]
PRODUCT_NAMES = {"SOFA-1": "布艺沙发", "LAMP-2": "落地灯", "PH-1": "智能手机"}
CUSTOMERS = [  # id suffix, name, company, orders (days ago, lines)
    ("wang", "王芳", "杭州云帆家居有限公司", [(40, HOME), (20, HOME), (5, HOME + PHONE)]),
    ("zhang", "张伟", None, [(3, PHONE)]),
    ("chen", "陈静", None, [(30, HOME * 3), (25, HOME * 3), (12, HOME * 2), (2, PHONE)]),
    ("li", "李娜", "上海", [(60, PHONE), (50, PHONE)]),
]


def named_lines(order: Order) -> Order:
    """The order with its lines called by their products' names, as a shop calls them."""
    lines = [line.model_copy(update={"name": PRODUCT_NAMES[line.sku]}) for line in order.lines]
    return order.model_copy(update={"lines": lines})


@pytest.fixture
async def console_url(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[str]:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create("王小明", Role.ADMIN, PASSWORD)
    events = [
        OrderCreated(
            order=named_lines(
                customer_order(
                    f"{run_id}-{suffix}-{n}",
                    f"{run_id}-{suffix}",
                    NOW - timedelta(days=days),
                    lines,
                    name,
                )
            ),
            occurred_at=NOW - timedelta(days=days),
        )
        for suffix, name, _, orders in CUSTOMERS
        for n, (days, lines) in enumerate(orders)
    ]
    await publish_events(tagger_settings, events)
    async with served_app(create_app(tagger_settings)) as url:

        async def all_tagged() -> bool:
            held = await mongo_db["customers"].find({}, {"orders": 1}).to_list()
            return sum(d.get("orders", 0) for d in held) == len(events)

        await eventually(all_tagged, within=90)
        yield url

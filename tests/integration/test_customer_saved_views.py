"""Saved views of the customers list through the console's API: one store for both lists, each
view counted in its own list, a customer filter checked as a customer filter."""

from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.console.sessions import CSRF_HEADER
from services.tagger.customers.segments import CustomerFilter
from tests.conftest import eventually
from tests.integration.test_console_api import console, sign_in

pytestmark = pytest.mark.integration

__all__ = ["console"]  # the fixture, shared with the console API tests


async def customers_ready(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    async def evaluated() -> bool:
        return await mongo_db["customers"].count_documents({"tag_names.0": {"$exists": True}}) > 0

    await eventually(evaluated, within=60)


async def test_a_customer_view_is_shared_and_counted_among_customers_only(
    console: httpx.AsyncClient, run_id: str, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    await customers_ready(mongo_db)
    csrf = await sign_in(console, f"agent-{run_id}")
    returning = {"all_tags": ["lifecycle:returning"], "spend_min": "100.00"}
    customers_view = await console.post(
        "/console/api/views",
        json={"list": "customers", "name": "回头客 消费≥100", "filter": returning},
        headers={CSRF_HEADER: csrf},
    )
    orders_view = await console.post(  # as the orders list posts it: no list named
        "/console/api/views",
        json={"name": "待处理", "filter": {"status": "pending"}},
        headers={CSRF_HEADER: csrf},
    )
    await mongo_db["console_views"].insert_one(  # saved before views named their list
        {"view_id": "old", "name": "旧视图", "filter": {}, "sort": "-created_at", "by": "x"}
    )
    assert customers_view.status_code == 201, customers_view.text
    assert orders_view.status_code == 201, orders_view.text
    expected = await mongo_db["customers"].count_documents(
        {"tag_names": "lifecycle:returning", "spend_cents": {"$gte": 10_000}}
    )
    assert expected > 0

    await sign_in(console, f"viewer-{run_id}")  # another person of the team sees them
    of_customers = (await console.get("/console/api/views", params={"list": "customers"})).json()
    of_orders = (await console.get("/console/api/views")).json()

    assert [(v["name"], v["list"], v["count"], v["by"], v["sort"]) for v in of_customers] == [
        ("回头客 消费≥100", "customers", expected, f"agent-{run_id}", "-spend")
    ]
    assert CustomerFilter.model_validate(of_customers[0]["filter"]) == CustomerFilter(
        all_tags=["lifecycle:returning"], spend_min="100.00"
    )
    assert sorted((v["name"], v["list"]) for v in of_orders) == [
        ("待处理", "orders"),
        ("旧视图", "orders"),
    ]


async def test_a_customer_view_with_a_bad_filter_is_refused_naming_the_field(
    console: httpx.AsyncClient, run_id: str
) -> None:
    csrf = await sign_in(console, f"agent-{run_id}")

    def post(body: dict[str, Any]) -> Any:
        return console.post("/console/api/views", json=body, headers={CSRF_HEADER: csrf})

    bad_spend = await post({"list": "customers", "name": "x", "filter": {"spend_min": "abc"}})
    order_field = await post({"list": "customers", "name": "x", "filter": {"status": "pending"}})
    bad_list = await post({"list": "suppliers", "name": "x", "filter": {}})
    unknown_list = await console.get("/console/api/views", params={"list": "suppliers"})

    assert bad_spend.status_code == 422
    assert "spend_min" in bad_spend.text
    assert order_field.status_code == 422  # a customer filter has no order status
    assert "status" in order_field.text
    assert bad_list.status_code == 422
    assert unknown_list.status_code == 422

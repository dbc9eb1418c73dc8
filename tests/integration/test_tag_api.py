"""The Tag API's orders on the real stack: each filter selects exactly the orders an independent
check does, pagination returns every order once under concurrent inserts, a manual tag on an
order wins its family and is recorded and published; and a key's scopes and the rate limit are
enforced. (Bulk changes and the catalog: test_tag_api_jobs.py; reports: test_tag_api_reports.py;
no request a 500: test_tag_api_fuzz.py.)"""

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from shared.events import OrderTagged
from tests.generated import order_stream
from tests.integration.conftest import api_client, publish_events, read_topic
from tests.integration.tagged_orders import matches, tag_api, tagged_dataset

pytestmark = pytest.mark.integration


async def page_through(client: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        answer = await client.get(
            "/orders", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [o["order_no"] for o in body["orders"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


FILTERS: list[dict[str, Any]] = [
    {"all_tags": ["urgent", "returning-customer"]},
    {"any_tags": ["region:east-china", "region:south-china"]},
    {"none_tags": ["regular"], "status": "pending"},
    {"amount_min": Decimal("1000"), "amount_max": Decimal("20000")},
    {"region": "north-china", "any_tags": ["big-customer", "high-value"]},
    {"family": "risk"},
    {"status": "cancelled"},
]


async def test_each_filter_returns_exactly_the_orders_an_independent_check_selects(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with tag_api(tagger_settings) as client:
        docs = await tagged_dataset(tagger_settings, mongo_db, run_id)
        customer = docs[0]["customer_id"]
        for which in [*FILTERS, {"customer_id": customer}]:
            params = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in which.items()}
            found = await page_through(client, {**params, "limit": 23})
            expected = {d["order_no"] for d in docs if matches(d, **which)}
            assert sorted(found) == sorted(expected), which
            assert len(found) == len(set(found)), which
        bad = await client.get("/orders", params={"amount_min": "5", "amount_max": "1"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["problem"].startswith("amount_min must not exceed")


async def test_pagination_returns_every_order_once_under_concurrent_inserts(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with tag_api(tagger_settings) as client:
        docs = await tagged_dataset(tagger_settings, mongo_db, run_id, count=200)
        more, _ = order_stream(150, customers=40, seed=99, prefix=f"{run_id}-late")
        inserting = asyncio.create_task(publish_events(tagger_settings, more))
        seen = await page_through(client, {"limit": 7, "sort": "created_at"})
        await inserting

    counts = Counter(seen)
    assert all(n == 1 for n in counts.values())
    assert {d["order_no"] for d in docs} <= set(counts)


async def test_manual_urgent_wins_its_family_is_recorded_and_published(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with tag_api(tagger_settings) as client:
        docs = await tagged_dataset(tagger_settings, mongo_db, run_id, count=30)
        target = next(d for d in docs if "regular" in d["tag_names"])["order_no"]
        answer = await client.post(
            f"/orders/{target}/tags", json={"add": ["urgent"], "reason": "customer called"}
        )
        unknown = await client.post(f"/orders/{target}/tags", json={"add": ["made-up-tag"]})
        detail = (await client.get(f"/orders/{target}")).json()
        tagged = await read_topic(tagger_settings, tagger_settings.topics.tagged, 31)

    assert answer.json() == {"order_no": target, "outcome": "changed"}
    assert unknown.status_code == 422
    assert "not in the catalog" in unknown.json()["detail"]
    urgent = next(t for t in detail["tags"] if t["name"] == "urgent")
    assert (urgent["source"], urgent["by"], urgent["reason"]) == (
        "manual",
        "local-dev",
        "customer called",
    )
    assert "regular" not in detail["tag_names"]
    manual_entry = detail["history"][-1]
    assert manual_entry["by"] == "local-dev"
    assert [t["tag"] for t in manual_entry["removed"]] == ["regular"]
    events = [OrderTagged.model_validate_json(r.value) for r in tagged]
    manual = [
        e
        for e in events
        if e.order_no == target
        and any(t.name == "urgent" and t.source.value == "manual" for t in e.tags_added)
    ]
    assert len(manual) == 1


async def test_scopes_and_rate_limits_are_enforced(
    tagger_settings: TaggerSettings,
    run_id: str,
) -> None:
    reader = ApiKey(name=f"reader-{run_id}", sha256=hash_key("r-key"), scopes={Scope.READ})
    settings = tagger_settings.model_copy(update={"api_keys": [reader], "api_rate_per_minute": 5})
    async with api_client(create_app(settings), key=None) as client:
        anonymous = await client.get("/orders")
        headers = {API_KEY_HEADER: "r-key"}
        tagging = await client.post(
            "/tags/bulk", headers=headers, json={"order_nos": ["x"], "add": ["vip"]}
        )
        # 11 requests: even if a minute window rolls over mid-way, one window sees 6 or more
        answers = [await client.get("/orders", headers=headers) for _ in range(11)]

    assert anonymous.status_code == 401
    assert tagging.status_code == 403
    statuses = [a.status_code for a in answers]
    assert 429 in statuses
    assert statuses[: statuses.index(429)] == [200] * statuses.index(429)
    limited = answers[statuses.index(429)]
    assert "5 requests a minute" in limited.json()["detail"]
    assert int(limited.headers["Retry-After"]) > 0

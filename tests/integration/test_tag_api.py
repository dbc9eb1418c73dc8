"""The Tag API on the real stack: filters, pagination, bulk changes and jobs, catalog, reports."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger import jobs as jobs_module
from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from shared.events import OrderCreated, OrderTagged
from shared.stored_tags import stored_tags_of
from tests.conftest import eventually, own_topics
from tests.generated import order_stream
from tests.integration.conftest import api_client, publish_events, read_topic, wait_for_orders

pytestmark = pytest.mark.integration


def tag_api(settings: TaggerSettings) -> Any:
    return api_client(create_app(settings))


async def tagged_dataset(
    settings: TaggerSettings, db: AsyncDatabase[dict[str, Any]], prefix: str, count: int = 300
) -> list[dict[str, Any]]:
    events, _ = order_stream(count, customers=40, seed=21, prefix=prefix)
    await publish_events(settings, events)
    created = sum(isinstance(e, OrderCreated) for e in events)
    return list((await wait_for_orders(db, created, len(events), within=60)).values())


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


def matches(
    doc: dict[str, Any],
    *,
    all_tags: list[str] = (),
    any_tags: list[str] = (),  # type: ignore[assignment]
    none_tags: list[str] = (),
    status: str | None = None,
    region: str | None = None,  # type: ignore[assignment]
    amount_min: Decimal | None = None,
    amount_max: Decimal | None = None,
    family: str | None = None,
    customer_id: str | None = None,
) -> bool:
    tags = set(doc["tag_names"])
    amount = Decimal(doc["amount_cents"]) / 100
    return (
        set(all_tags) <= tags
        and (not any_tags or bool(tags & set(any_tags)))
        and not tags & set(none_tags)
        and (status is None or doc["status"] == status)
        and (region is None or doc["region"] == region)
        and (amount_min is None or amount >= amount_min)
        and (amount_max is None or amount <= amount_max)
        and (family is None or of_family(doc, family))
        and (customer_id is None or doc["customer_id"] == customer_id)
    )


def of_family(doc: dict[str, Any], family: str) -> bool:
    """A tag of the family (its stored family, in any stored form) or named ``family:value``
    (``docs/tag-api.md``)."""
    return any(tag.get("family") == family for tag in stored_tags_of(doc)) or any(
        name.startswith(f"{family}:") for name in doc["tag_names"]
    )


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


async def test_filter_change_needs_a_confirmed_count_and_resumes_after_a_kill_exactly_once(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs_module, "CHUNK", 10)
    # The first process's job waits after its first recorded chunk until the process stops:
    # on a quick machine it finished every chunk before the stop came (seen in CI).
    record_progress = jobs_module.Jobs._record_progress
    never = asyncio.Event()

    async def record_then_wait(self: jobs_module.Jobs, *args: Any, **kwargs: Any) -> None:
        await record_progress(self, *args, **kwargs)
        await never.wait()

    monkeypatch.setattr(jobs_module.Jobs, "_record_progress", record_then_wait)
    body: dict[str, Any] = {"filter": {"any_tags": ["region:east-china"]}, "add": ["vip"]}
    async with tag_api(tagger_settings) as client:
        docs = await tagged_dataset(tagger_settings, mongo_db, run_id, count=200)
        dry = (await client.post("/tags/by-filter", json=body)).json()
        wrong = await client.post("/tags/by-filter", json={**body, "confirm_count": 1})
        started = await client.post(
            "/tags/by-filter", json={**body, "confirm_count": dry["would_touch"]}
        )
        job_id = started.json()["job_id"]

        async def some_progress() -> bool:
            job = await mongo_db["tag_jobs"].find_one({"job_id": job_id})
            return bool(job) and job["processed"] > 0

        await eventually(some_progress)
    # the app (and its job) stopped mid-way; a new process resumes it
    stopped_at = (await mongo_db["tag_jobs"].find_one({"job_id": job_id}))["processed"]
    monkeypatch.setattr(jobs_module.Jobs, "_record_progress", record_progress)
    async with tag_api(tagger_settings) as client:

        async def done() -> dict[str, Any] | None:
            job = (await client.get(f"/jobs/{job_id}")).json()
            return job if job["status"] == "done" else None

        job = await eventually(done, within=60)

    expected = {d["order_no"] for d in docs if "region:east-china" in d["tag_names"]}
    assert dry["would_touch"] == len(expected)
    assert wrong.status_code == 409
    assert 0 < stopped_at < len(expected)
    assert job["processed"] >= len(expected)
    entries = (
        await mongo_db["tag_history"]
        .find(
            {"event_id": {"$regex": "."}, "by": "local-dev"}, {"_id": 0, "order_no": 1, "added": 1}
        )
        .to_list(None)
    )
    vip_added = Counter(
        e["order_no"] for e in entries if any(t["tag"] == "vip" for t in e["added"])
    )
    already_vip = {d["order_no"] for d in docs if "vip" in d["tag_names"]}
    assert set(vip_added) == expected - already_vip
    assert all(n == 1 for n in vip_added.values())


async def test_rename_and_merge_rewrite_the_orders_that_carry_the_tag(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    settings = tagger_settings.model_copy(update={"tagger_allow_free_tags": False})
    async with tag_api(settings) as client:
        docs = await tagged_dataset(settings, mongo_db, run_id, count=40)
        orders = [d["order_no"] for d in docs[:6]]
        assert (
            await client.post("/tags", json={"name": "gift", "description": "gift wrap"})
        ).status_code == 201
        assert (await client.post("/tags", json={"name": "present"})).status_code == 201
        await client.post("/tags/bulk", json={"order_nos": orders[:3], "add": ["gift"]})
        await client.post("/tags/bulk", json={"order_nos": orders[3:], "add": ["present"]})
        rules_tag = await client.post("/tags/urgent/rename", json={"new_name": "rush"})
        merge = (await client.post("/tags/present/merge", json={"into": "gift"})).json()
        await eventually(lambda: _job_done(client, merge["job_id"]))
        rename = (await client.post("/tags/gift/rename", json={"new_name": "gift-wrap"})).json()
        await eventually(lambda: _job_done(client, rename["job_id"]))
        catalog = {t["name"]: t for t in (await client.get("/tags")).json()}
        # for pickers and badges: the same tags, no usage counted
        names_only = (await client.get("/tags", params={"usage": "false"})).json()
        carrying = (await client.get("/orders", params={"all_tags": "gift-wrap"})).json()

    assert rules_tag.status_code == 409
    assert (merge["orders"], rename["orders"]) == (3, 6)
    assert sorted(o["order_no"] for o in carrying["orders"]) == sorted(orders)
    assert "gift" not in catalog
    assert "present" not in catalog
    assert catalog["gift-wrap"]["orders"] == 6
    assert catalog["gift-wrap"]["description"] == "gift wrap"
    assert [t["name"] for t in names_only] == list(catalog)
    assert {(t["orders"], t["customers"]) for t in names_only} == {(None, None)}


async def _job_done(client: httpx.AsyncClient, job_id: str) -> bool:
    return bool((await client.get(f"/jobs/{job_id}")).json()["status"] == "done")


async def test_reports_match_independent_counts(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with tag_api(tagger_settings) as client:
        docs = await tagged_dataset(tagger_settings, mongo_db, run_id, count=250)
        # every third order a month earlier, before New York's clocks went back (1 November):
        # its days at -04:00, the others' at -05:00, so one offset for all cannot pass
        for doc in docs[::3]:
            doc["created_at"] -= timedelta(days=30)
            await mongo_db["orders"].update_one(
                {"order_no": doc["order_no"]}, {"$set": {"created_at": doc["created_at"]}}
            )
        by_day = (await client.get("/reports/tags-over-time", params={"period": "day"})).json()
        # a day where the reader is: each order at its own date's offset there
        new_york = {"period": "day", "tz": "America/New_York"}
        by_ny_day = (await client.get("/reports/tags-over-time", params=new_york)).json()
        no_zone = await client.get("/reports/tags-over-time", params={"tz": "Mars/Olympus"})
        share = (await client.get("/reports/tag-share")).json()
        top = (
            await client.get("/reports/top-customers", params={"tag": "urgent", "limit": 5})
        ).json()
        csv_text = (await client.get("/reports/tag-share", params={"format": "csv"})).text

    expected_day = Counter(
        (d["created_at"].strftime("%Y-%m-%d"), t) for d in docs for t in d["tag_names"]
    )
    assert {(r["period"], r["tag"]): r["orders"] for r in by_day} == dict(expected_day)
    ny = ZoneInfo("America/New_York")
    expected_ny_day = Counter(
        (d["created_at"].replace(tzinfo=UTC).astimezone(ny).strftime("%Y-%m-%d"), t)
        for d in docs
        for t in d["tag_names"]
    )
    assert {(r["period"], r["tag"]): r["orders"] for r in by_ny_day} == dict(expected_ny_day)
    fixed_offsets = [
        Counter(
            ((d["created_at"].replace(tzinfo=UTC) + offset).strftime("%Y-%m-%d"), t)
            for d in docs
            for t in d["tag_names"]
        )
        for offset in (timedelta(hours=-4), timedelta(hours=-5))
    ]
    assert all(dict(expected_ny_day) != dict(fixed) for fixed in fixed_offsets)
    assert no_zone.status_code == 422
    assert [e["field"] for e in no_zone.json()["errors"]] == ["tz"]
    tag_counts = Counter(t for d in docs for t in d["tag_names"])
    assert {r["tag"]: r["orders"] for r in share} == dict(tag_counts)
    assert next(r for r in share if r["tag"] == "urgent")["share"] == round(
        tag_counts["urgent"] / len(docs), 4
    )
    spend: Counter[str] = Counter()
    for d in docs:
        if "urgent" in d["tag_names"]:
            spend[d["customer_id"]] += d["amount_cents"]
    best = sorted(spend.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert [(r["customer_id"], r["amount"], r["currency"]) for r in top] == [
        (c, f"{cents / 100:.2f}", "CNY") for c, cents in best
    ]
    names = {d["customer_id"]: d["order"]["customer"]["name"] for d in docs}
    assert [r["name"] for r in top] == [names[c] for c, _ in best]
    assert csv_text.splitlines()[0] == "tag,orders,share"


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


QUERY_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.sampled_from(
        ["", "-1", "1e9", "2026-11-24T00:00:00Z", "urgent", "2026-13-45", "null", "%00", "😀"]
    ),
)
PARAMETERS = [
    "all_tags",
    "any_tags",
    "none_tags",
    "family",
    "status",
    "customer_id",
    "region",
    "amount_min",
    "amount_max",
    "created_from",
    "created_to",
    "sort",
    "limit",
    "cursor",
    "period",
    "format",
    "tag",
    "days",
    "max_rows",
]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    params=st.dictionaries(st.sampled_from(PARAMETERS), QUERY_VALUES, max_size=5),
    path=st.sampled_from(
        [
            "/orders",
            "/orders/export.csv",
            "/reports/tags-over-time",
            "/reports/tag-share",
            "/reports/top-customers",
            "/tags/unused",
            "/orders/SO-1",
            "/jobs/x",
        ]
    ),
)
async def test_no_query_produces_a_server_error(
    tag_api_client: httpx.AsyncClient, params: dict[str, str], path: str
) -> None:
    answer = await tag_api_client.get(path, params=params)

    assert answer.status_code < 500, (path, params, answer.text[:300])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.dictionaries(
        st.sampled_from(["add", "remove", "order_nos", "filter", "reason", "confirm_count"]),
        st.one_of(
            st.lists(st.text(max_size=20), max_size=3),
            st.text(),
            st.integers(),
            st.none(),
            st.dictionaries(st.sampled_from(PARAMETERS), QUERY_VALUES),
        ),
        max_size=4,
    ),
    path=st.sampled_from(["/tags/bulk", "/tags/by-filter", "/orders/SO-1/tags"]),
)
async def test_no_change_request_produces_a_server_error(
    tag_api_client: httpx.AsyncClient, body: dict[str, Any], path: str
) -> None:
    answer = await tag_api_client.post(path, json=body)

    assert answer.status_code < 500, (path, body, answer.text[:300])


@pytest.fixture(scope="module")
async def tag_api_client() -> AsyncIterator[httpx.AsyncClient]:
    """One tagger for the fuzz runs (an app start per example would dominate the run)."""
    run = uuid.uuid4().hex[:10]
    settings = TaggerSettings(
        mongo_database=f"test_fuzz_{run}",
        tagger_group_id=f"fuzz-{run}",
        topics=own_topics(run),
        api_rate_per_minute=1_000_000,
    )
    async with tag_api(settings) as client:
        yield client

"""The Tag API's jobs and catalog on the real stack: a change to every order a filter selects
needs the count confirmed and, killed mid-way, resumes in a new process touching each order
exactly once; renaming and merging catalog tags rewrite the orders that carry them (a tag the
rules set is not renamed)."""

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger import jobs as jobs_module
from services.tagger.settings import TaggerSettings
from tests.conftest import eventually
from tests.integration.tagged_orders import tag_api, tagged_dataset

pytestmark = pytest.mark.integration


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

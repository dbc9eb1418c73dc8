"""The diff of a candidate rule version as a job, on the real stack: the Tag API (an API-only
process) records it and answers 202 at once, a real tagger process (jobs role) runs it and is
killed with SIGKILL mid-way, the restarted one resumes from its last checkpoint, and the report
counts every order exactly once, equals what a re-tag under the candidate would change, is kept
with the candidate version, and nothing was written to any order."""

import codecs
import csv
import io
import signal
from collections import Counter
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.app import create_app
from services.tagger.jobs import DIFF_KIND, Jobs
from services.tagger.rule_changes import ReplayWindow, StoredOrders
from services.tagger.rule_diff_job import DiffRequest, RuleDiffJobs
from services.tagger.rule_versions import RuleVersions
from services.tagger.store import OrderStore
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from tests.conftest import eventually
from tests.integration.conftest import api_client
from tests.integration.test_rule_activation import (
    ACTIVE,
    ACTIVE_TEXT,
    CANDIDATE,
    CANDIDATE_TEXT,
    api_only,
    job_when,
    jobs_process,
    seed_tagged_orders,
    tag_names,
)

pytestmark = pytest.mark.integration

# three batches (REPLAY_BATCH): the kill comes after the first checkpoint, well before the end
ORDERS = 7500


async def test_a_diff_job_survives_a_kill_and_counts_every_order_once(
    tagger_settings: Any,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    before = await seed_tagged_orders(store, f"F{run_id}", ORDERS)
    active = await versions.adopt_file(ACTIVE_TEXT, ACTIVE, by="test", comment="the file")
    candidate = await versions.record(CANDIDATE_TEXT, CANDIDATE, by="test", active=False)
    # what a re-tag under the candidate would change, computed with the engine alone
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    changing = 0
    changes: dict[str, tuple[set[str], set[str]]] = {}  # order number: gained, lost
    for order_no, record in before.items():
        now, after = {t.name for t in record.tags}, tag_names(record, CANDIDATE)
        gained.update(after - now)
        lost.update(now - after)
        changing += after != now
        if after != now:
            changes[order_no] = (after - now, now - after)
    assert changing > 1500
    stored_before = {d["order_no"]: d async for d in mongo_db["orders"].find({}, {"_id": 0})}

    reader = ApiKey(name=f"reader-{run_id}", sha256=hash_key("r-key"), scopes={Scope.READ})
    async with api_client(create_app(api_only(tagger_settings, reader))) as client:
        response = await client.post(f"/rules/versions/{candidate}/diff")
        assert response.status_code == 202, response.text
        started = response.json()
        job_id = started["job_id"]
        assert (started["active"], started["candidate"]) == (active, candidate)
        assert started["orders"] == ORDERS
        waiting = (await client.get(f"/rules/diffs/{job_id}")).json()
        assert (waiting["status"], waiting["processed"]) == ("running", 0)  # API-only: recorded

        async with jobs_process(tagger_settings) as first:
            mid = await eventually(
                lambda: job_when(mongo_db, job_id, lambda j: j["processed"] > 0), within=120
            )
            first.send_signal(signal.SIGSTOP)  # freeze it first: the job cannot finish meanwhile
            at_kill = await job_when(mongo_db, job_id, lambda j: True)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert at_kill is not None
        assert at_kill["status"] == "running"
        assert 0 < at_kill["processed"] < ORDERS, "killed too late"
        assert at_kill["result"]["orders_compared"] == at_kill["processed"]  # kept together

        async with jobs_process(tagger_settings):
            done = await eventually(
                lambda: job_when(mongo_db, job_id, lambda j: j["status"] == "done"), within=180
            )
        report = await client.get(f"/rules/diffs/{job_id}", headers={API_KEY_HEADER: "r-key"})
        csv_file = await client.get(report.json()["changes_csv"], headers={API_KEY_HEADER: "r-key"})
        kept = (await client.get(f"/rules/versions/{candidate}/diff")).json()
        listed = (await client.get("/rules/versions")).json()

    assert mid["lease_owner"] != done["lease_owner"]  # taken over after the kill
    # resumed from the checkpoint: a restart from zero would have counted orders twice
    assert done["processed"] == done["total"] == ORDERS
    diff = report.json()
    assert diff["status"] == "done"
    assert diff["processed"] == ORDERS
    assert diff["orders_changed"] == changing
    assert {row["tag"]: row["gained"] for row in diff["tags"] if row["gained"]} == dict(gained)
    assert {row["tag"]: row["lost"] for row in diff["tags"] if row["lost"]} == dict(lost)
    for row in diff["tags"]:
        assert len(row["gained_examples"]) == min(row["gained"], 5)
    # every changed order once in the CSV (for Excel: UTF-8 with a BOM), though a batch was
    # compared twice around the kill
    assert csv_file.status_code == 200, csv_file.text
    assert csv_file.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.DictReader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    assert [row["order_no"] for row in rows] == sorted(changes)
    for row in rows:
        assert (set(row["gained"].split()), set(row["lost"].split())) == changes[row["order_no"]]
        assert row["customer_id"] == before[row["order_no"]].order.customer.id
    assert (diff["changes_kept"], diff["changes_left_out"]) == (changing, 0)
    # kept with the candidate version, and listed with it
    assert (kept["job_id"], kept["status"], kept["active"]) == (job_id, "done", active)
    assert (kept["tags"], kept["rules"]) == (diff["tags"], diff["rules"])
    [row] = [v for v in listed["versions"] if v["version"] == candidate]
    assert row["last_diff"]["orders_changed"] == changing
    # nothing written
    stored_after = {d["order_no"]: d async for d in mongo_db["orders"].find({}, {"_id": 0})}
    assert stored_after == stored_before
    assert await mongo_db["tag_history"].count_documents({}) == 0


async def test_the_csv_of_a_diff_keeps_at_most_its_limit_and_says_how_many_it_left_out(
    mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    before = await seed_tagged_orders(store, f"L{run_id}", 3000)  # two batches
    changing = sorted(
        order_no
        for order_no, record in before.items()
        if tag_names(record, CANDIDATE) != {t.name for t in record.tags}
    )
    assert len(changing) > 10
    active = await versions.adopt_file(ACTIVE_TEXT, ACTIVE, by="test", comment="the file")
    candidate = await versions.record(CANDIDATE_TEXT, CANDIDATE, by="test", active=False)
    diffs = RuleDiffJobs(versions, StoredOrders(mongo_db), max_tags=20, changes_kept_max=10)
    jobs = Jobs(mongo_db, None, runs={DIFF_KIND: diffs.run})
    try:
        job_id, _ = await diffs.start(jobs, DiffRequest(candidate, active, ReplayWindow()))
        done = await eventually(
            lambda: job_when(mongo_db, job_id, lambda j: j["status"] != "running"), within=120
        )
    finally:
        await jobs.stop()

    assert done["status"] == "done"
    assert done["result"]["orders_changed"] == len(changing)
    assert done["changes_kept"] == 10
    rows = [row async for row in diffs.changes.rows(job_id)]
    assert [row[0] for row in rows] == changing[:10]  # the first by order number

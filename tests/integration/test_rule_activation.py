"""Activating a rule version with a backfill, and rolling back, on the real stack: a real tagger
process (jobs role) runs the backfill and is killed with SIGKILL mid-way; the restarted one
resumes it, and every order ends with the tags a re-tag under the version gives, changed once,
with history citing the version and alerts (tagged events) only for tags that newly appeared.
The Tag API refuses activation to keys without ``admin``."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from typer.testing import CliRunner

from bench.harness import free_port
from services.cli import app as cli
from services.tagger.app import create_app
from services.tagger.bootstrap import RecordedJobs
from services.tagger.editing import edit_event_id
from services.tagger.order_record import OrderRecord
from services.tagger.queries import OrderFilter
from services.tagger.rule_activation import Backfill, backfill_operation
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import version_of
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleSet, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE, Role, TaggerSettings
from services.tagger.store import OrderStore
from services.tagger.tagging import tagged_event_id
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from shared.events import OrderCreated, OrderTagged
from shared.kafka import ensure_topics
from shared.stored_order import applied_event_ids
from shared.stored_tags import stored_tags_of
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.accounting import retagged_names
from tests.integration.conftest import api_client, read_topic

pytestmark = pytest.mark.integration

ACTIVE_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
ACTIVE = parse_rules(ACTIVE_TEXT)
# "big customer" from a single order of 2,000 instead of 50,000: many orders gain it
CANDIDATE_TEXT = ACTIVE_TEXT.replace(
    "when: {fact: amount, gte: 50000}", "when: {fact: amount, gte: 2000}"
)
CANDIDATE = parse_rules(CANDIDATE_TEXT)
ORDERS = 3000
MAX_TAGS = 20
LEASE_S = 2.0


def tag_names(record: OrderRecord, rules: RuleSet) -> set[str]:
    return retagged_names(record, rules, MAX_TAGS)


async def seed_tagged_orders(
    store: OrderStore, prefix: str, count: int = ORDERS
) -> dict[str, OrderRecord]:
    """Orders stored with the tags the active rules give them."""
    events, _ = order_stream(count, customers=count // 10, seed=18, prefix=prefix)
    records = {}
    for event in events:
        if not isinstance(event, OrderCreated):
            continue
        order = event.order
        blank = OrderRecord(order, order.status, [], FiguresSnapshot())
        facts = order_facts(order, blank.figures, order.status)
        change = merge_tags(
            [],
            decide(ACTIVE, facts),
            exclusive_families=ACTIVE.exclusive_families,
            max_tags=MAX_TAGS,
            at=order.created_at,
        )
        records[order.order_no] = OrderRecord(order, order.status, change.tags, FiguresSnapshot())
    batch = list(records.values())
    for first in range(0, len(batch), 500):
        assert await store.save(batch[first : first + 500], []) == set()
    return records


@asynccontextmanager
async def jobs_process(settings: TaggerSettings) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m services.tagger --role jobs``: a real tagger replica that runs jobs."""
    topics = settings.topics
    env = {
        **os.environ,
        "ORDERTAG_MONGO_DATABASE": settings.mongo_database,
        "ORDERTAG_TOPICS__ORDERS": topics.orders,
        "ORDERTAG_TOPICS__TAGGED": topics.tagged,
        "ORDERTAG_TOPICS__DEAD_LETTER": topics.dead_letter,
        "ORDERTAG_TOPICS__ALERTS": topics.alerts,
        "ORDERTAG_TAGGER_PORT": str(free_port()),
        "ORDERTAG_TAGGER_JOB_LEASE_S": str(LEASE_S),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.tagger",
        "--role",
        "jobs",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def job_when(
    db: AsyncDatabase[dict[str, Any]], job_id: str, check: Any
) -> dict[str, Any] | None:
    job = await db["tag_jobs"].find_one({"job_id": job_id}, {"_id": 0})
    return job if job is not None and check(job) else None


def api_only(settings: TaggerSettings, *keys: ApiKey) -> TaggerSettings:
    return settings.model_copy(
        update={"tagger_roles": frozenset({Role.API}), "api_keys": [*settings.api_keys, *keys]}
    )


async def test_activate_with_backfill_survives_a_kill_and_rollback_restores_the_tags(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    await ensure_topics(tagger_settings)
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    before = await seed_tagged_orders(store, f"B{run_id}")
    active = await versions.adopt_file(ACTIVE_TEXT, ACTIVE, by="test", comment="the file")
    candidate = await versions.record(CANDIDATE_TEXT, CANDIDATE, by="test", active=False)
    expected = {no: tag_names(record, CANDIDATE) for no, record in before.items()}
    gaining = {no for no, names in expected.items() if names - {t.name for t in before[no].tags}}
    changing = {no for no, names in expected.items() if names != {t.name for t in before[no].tags}}
    assert len(changing) > 400  # enough to interrupt mid-way

    async with api_client(create_app(api_only(tagger_settings))) as client:
        response = await client.put(
            "/rules/active",
            json={"version": candidate, "backfill": {}, "alert_new_tags": True},
        )
        assert response.status_code == 202, response.text
        activation = response.json()
        job_id = activation["job_id"]
        assert activation["previous"] == active
        assert activation["orders"] == len(before)

        # the API process follows the version in force without a restart
        async def follows() -> bool:
            versions_now = (await client.get("/rules/versions")).json()
            return bool(versions_now["active"] == candidate)

        await eventually(follows, within=20)

        async with jobs_process(tagger_settings) as first:
            mid = await eventually(
                lambda: job_when(mongo_db, job_id, lambda j: j["processed"] >= 400), within=120
            )
            first.send_signal(signal.SIGSTOP)  # freeze it first: the job cannot finish meanwhile
            at_kill = await job_when(mongo_db, job_id, lambda j: True)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert at_kill is not None
        assert at_kill["processed"] < len(before), "killed too late"
        assert at_kill["status"] == "running"

        async with jobs_process(tagger_settings):
            done = await eventually(
                lambda: job_when(mongo_db, job_id, lambda j: j["status"] == "done"), within=180
            )
            assert done["processed"] == len(before)
            assert done["changed"] == len(changing)
            assert mid["lease_owner"] != done["lease_owner"]  # taken over after the kill

            state = (await client.get("/rules/active")).json()
            assert state["active"]["version"] == candidate
            assert state["running_backfill"] is None

            # every order as a re-tag under the candidate gives it, changed exactly once
            event_of = {no: str(edit_event_id(backfill_operation(job_id), no)) for no in before}
            stored = {d["order_no"]: d async for d in mongo_db["orders"].find({}, {"_id": 0})}
            for order_no, document in stored.items():
                assert set(document["tag_names"]) == expected[order_no], order_no
                applied = applied_event_ids(document).count(event_of[order_no])
                assert applied == (1 if order_no in changing else 0), order_no
            for document in stored.values():
                for tag in stored_tags_of(document):
                    if tag["name"] == "big-customer" and document["order_no"] in gaining:
                        assert tag["by"] == f"ruleset:{candidate}"  # provenance
            history = (
                await mongo_db["tag_history"]
                .find({"event_id": {"$in": list(event_of.values())}}, {"_id": 0})
                .to_list(None)
            )
            assert sorted(e["order_no"] for e in history) == sorted(changing)
            assert {e["by"] for e in history} == {f"ruleset:{candidate}"}

            # alerts: one tagged event (by id) per order that gained a tag, naming only the
            # tags that newly appeared
            records = await read_topic(
                tagger_settings, tagger_settings.topics.tagged, len(gaining), extra_wait=2
            )
            published = [OrderTagged.model_validate_json(r.value) for r in records]
            assert {t.event_id for t in published} == {
                tagged_event_id(edit_event_id(backfill_operation(job_id), no)) for no in gaining
            }
            for event in published:
                old = {t.name for t in before[event.order_no].tags}
                assert {t.name for t in event.tags_added} == expected[event.order_no] - old

            # rollback: the same path back, without alerts by default
            response = await client.post("/rules/rollback", json={"backfill": {}})
            assert response.status_code == 202, response.text
            back = response.json()
            assert (back["version"], back["previous"]) == (active, candidate)
            await eventually(
                lambda: job_when(mongo_db, back["job_id"], lambda j: j["status"] == "done"),
                within=180,
            )

        restored = {d["order_no"]: d async for d in mongo_db["orders"].find({}, {"_id": 0})}
        for order_no, document in restored.items():
            assert set(document["tag_names"]) == {t.name for t in before[order_no].tags}
        after_rollback = await read_topic(
            tagger_settings, tagger_settings.topics.tagged, len(records), extra_wait=2
        )
        assert len(after_rollback) == len(records)  # the rollback alerted nobody
        versions_now = await versions.history()
        assert [v.version for v in versions_now[:2]] == [active, candidate]


async def test_activation_is_refused_without_admin_and_while_a_backfill_runs(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    reader = ApiKey(name=f"reader-{run_id}", sha256=hash_key("r-key"), scopes={Scope.READ})
    agent = ApiKey(name=f"agent-{run_id}", sha256=hash_key("a-key"), scopes={Scope.READ, Scope.TAG})
    versions = RuleVersions(mongo_db)
    settings = api_only(tagger_settings, reader, agent)
    async with api_client(create_app(settings)) as client:
        candidate = await versions.record(CANDIDATE_TEXT, CANDIDATE, by="test", active=False)
        body = {"version": candidate}
        as_reader = await client.put("/rules/active", json=body, headers={API_KEY_HEADER: "r-key"})
        as_agent = await client.put("/rules/active", json=body, headers={API_KEY_HEADER: "a-key"})
        back_as_agent = await client.post(
            "/rules/rollback", json={}, headers={API_KEY_HEADER: "a-key"}
        )
        read_as_reader = await client.get("/rules/active", headers={API_KEY_HEADER: "r-key"})
        unknown = await client.put("/rules/active", json={"version": "0" * 16})
        malformed = await client.put("/rules/active", json={"version": "latest"})
        nothing_before = await client.post("/rules/rollback", json={})

        # a backfill still running: another activation would fight it
        recorder = RecordedJobs(mongo_db, None)
        running = await recorder.start_backfill(OrderFilter(), Backfill(candidate, False), 0)
        busy = await client.put("/rules/active", json={**body, "backfill": {}})

    assert [as_reader.status_code, as_agent.status_code, back_as_agent.status_code] == [403] * 3
    assert read_as_reader.status_code == 200
    assert read_as_reader.json()["active"]["version"] == version_of(ACTIVE_TEXT)
    assert unknown.status_code == 404
    assert "record it first" in unknown.text
    assert malformed.status_code == 422
    assert "version" in malformed.text
    assert nothing_before.status_code == 409
    assert "no earlier version" in nothing_before.text
    assert busy.status_code == 409
    assert running in busy.text
    assert (await versions.active_rules()).version == version_of(ACTIVE_TEXT)  # type: ignore[union-attr]


async def test_the_command_line_activates_and_rolls_back_without_backfill(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERTAG_MONGO_DATABASE", tagger_settings.mongo_database)
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    active = await versions.adopt_file(ACTIVE_TEXT, ACTIVE, by="test", comment="the file")
    candidate = await versions.record(CANDIDATE_TEXT, CANDIDATE, by="test", active=False)
    runner = CliRunner()

    def run(*args: str) -> Any:  # the command runs its own event loop: in a thread
        return runner.invoke(cli, ["ruleset", *args])

    activated = await asyncio.to_thread(run, "activate", candidate, "--no-backfill")
    assert activated.exit_code == 0, activated.output
    assert f"active {candidate}" in activated.output
    assert (await versions.active_rules()).version == candidate  # type: ignore[union-attr]
    unknown = await asyncio.to_thread(run, "activate", "f" * 16, "--no-backfill")
    assert unknown.exit_code == 1
    assert "record it first" in unknown.output
    rolled = await asyncio.to_thread(run, "rollback", "--no-backfill")
    assert rolled.exit_code == 0, rolled.output
    assert f"active {active}" in rolled.output
    history = await asyncio.to_thread(run, "history")
    assert f"{active} (active)" in history.output

"""Bulk tag jobs across replicas: two job runners on one database, the one holding the job
killed with SIGKILL mid-job; the other takes the job over when its lease expires and every
order is changed, recorded and published exactly once."""

import asyncio
import signal
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.editing import TagEditing, edit_event_id
from services.tagger.jobs import Jobs
from services.tagger.manual import ManualChange
from services.tagger.order_record import OrderRecord
from services.tagger.queries import OrderFilter
from services.tagger.rules.book import RuleBook
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from services.tagger.store import OrderStore
from services.tagger.tagging import tagged_event_id
from shared.events import OrderTagged
from shared.kafka import ensure_topics
from shared.stored_order import applied_event_ids
from tests.conftest import eventually
from tests.factories import make_order
from tests.integration.conftest import read_topic
from tests.integration.servers import service_env, start_module

pytestmark = pytest.mark.integration

ORDERS = 2000
LEASE_S = 2.0


class RecordingJobs(Jobs):
    """Records jobs for the runners (as an API-only replica does) without running them."""

    def _spawn(self, job_id: str) -> None:
        return None


async def start_runner(settings: TaggerSettings) -> asyncio.subprocess.Process:
    return await start_module(
        "tests.integration.job_runner", str(LEASE_S), env=service_env(settings)
    )


async def seed_orders(store: OrderStore, prefix: str) -> list[str]:
    records = [
        OrderRecord(order, order.status, [], FiguresSnapshot())
        for order in (make_order(f"{prefix}-{i:05d}") for i in range(ORDERS))
    ]
    for first in range(0, ORDERS, 500):
        assert await store.save(records[first : first + 500], []) == set()
    return [record.order.order_no for record in records]


async def test_a_job_survives_the_death_of_its_replica_and_applies_exactly_once(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    await ensure_topics(tagger_settings)
    book = RuleBook(DEFAULT_RULES_FILE)
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    await store.seed_catalog(book.current.tags)
    order_nos = await seed_orders(store, run_id)

    async def no_publish(tagged: list[OrderTagged]) -> None:
        raise AssertionError("the recording replica changes no order")

    editing = TagEditing(store, book, no_publish, max_tags=20, allow_free_tags=False)
    recorder = RecordingJobs(mongo_db, editing, lease=timedelta(seconds=LEASE_S))
    await recorder.ensure_indexes()
    change = ManualChange(add=("urgent",), remove=(), by="ops", reason="storm warning")
    job_id = await recorder.start("tag_by_filter", OrderFilter(), change, ORDERS)

    runners = [await start_runner(tagger_settings) for _ in range(2)]
    try:

        async def holder_mid_job() -> dict[str, Any] | None:
            job = await mongo_db["tag_jobs"].find_one({"job_id": job_id})
            return job if job and job["processed"] >= 400 and job["lease_owner"] else None

        job = await eventually(holder_mid_job, within=90)
        holder_pid = int(job["lease_owner"].split(":")[1])
        [holder] = [r for r in runners if r.pid == holder_pid]
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        at_kill = await mongo_db["tag_jobs"].find_one({"job_id": job_id})
        assert at_kill is not None
        assert at_kill["processed"] < ORDERS, "the kill came too late to interrupt the job"

        async def done() -> dict[str, Any] | None:
            job = await mongo_db["tag_jobs"].find_one({"job_id": job_id})
            return job if job and job["status"] == "done" else None

        finished = await eventually(done, within=120)
    finally:
        for runner in runners:
            if runner.returncode is None:
                runner.kill()
                await runner.wait()

    assert finished["lease_owner"] != job["lease_owner"]  # taken over by the other replica
    assert (finished["processed"], finished["changed"]) == (ORDERS, ORDERS)
    event_ids = {order_no: str(edit_event_id(f"job:{job_id}", order_no)) for order_no in order_nos}
    stored = await mongo_db["orders"].find({}, {"_id": 0}).to_list(None)
    assert all(d["tag_names"].count("urgent") == 1 for d in stored)
    assert all(applied_event_ids(d).count(event_ids[d["order_no"]]) == 1 for d in stored)
    history = await mongo_db["tag_history"].count_documents(
        {"event_id": {"$in": list(event_ids.values())}}
    )
    assert history == ORDERS
    records = await read_topic(
        tagger_settings, tagger_settings.topics.tagged, ORDERS, within=60, extra_wait=2
    )
    published = {OrderTagged.model_validate_json(r.value).event_id for r in records}
    assert published == {tagged_event_id(edit_event_id(f"job:{job_id}", o)) for o in order_nos}

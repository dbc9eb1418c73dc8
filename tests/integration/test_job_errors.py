"""A bulk job meets a transient error (Kafka refusing for a moment) and finishes by itself,
exactly once; a permanent error (the tag deactivated meanwhile) fails it with the reason."""

from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.editing import TagEditing
from services.tagger.jobs import Jobs
from services.tagger.manual import ManualChange
from services.tagger.order_record import OrderRecord
from services.tagger.queries import OrderFilter
from services.tagger.rules.book import RuleBook
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from shared.events import OrderTagged
from tests.conftest import eventually
from tests.factories import make_order

pytestmark = pytest.mark.integration

ORDERS = 450  # three chunks
URGENT = ManualChange(add=("urgent",), remove=(), by="ops", reason="storm warning")


class FlakyKafka:
    """Refuses the first ``outages`` publications, then records what it is given."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.published: list[OrderTagged] = []

    async def __call__(self, tagged: list[OrderTagged]) -> None:
        if self.outages:
            self.outages -= 1
            raise KafkaConnectionError("broker unreachable")
        self.published.extend(tagged)


async def jobs_over(
    db: AsyncDatabase[dict[str, Any]], run_id: str, publish: FlakyKafka
) -> tuple[Jobs, OrderStore]:
    book = RuleBook(DEFAULT_RULES_FILE)
    store = OrderStore(db)
    await store.ensure_indexes()
    await store.seed_catalog(book.current.tags)
    records = [
        OrderRecord(order, order.status, [], FiguresSnapshot())
        for order in (make_order(f"{run_id}-{i:04d}") for i in range(ORDERS))
    ]
    assert await store.save(records, []) == set()
    editing = TagEditing(store, book, publish, max_tags=20, allow_free_tags=False)
    jobs = Jobs(db, editing)
    await jobs.ensure_indexes()
    return jobs, store


async def job_settled(jobs: Jobs, job_id: str) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        job = await jobs.get(job_id)
        return job if job and job["status"] != "running" else None

    result: dict[str, Any] = await eventually(settled, within=60)
    return result


async def test_a_transient_error_is_retried_and_the_job_finishes_exactly_once(
    mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    kafka = FlakyKafka(outages=3)
    jobs, _ = await jobs_over(mongo_db, run_id, kafka)
    try:
        job_id = await jobs.start("tag_by_filter", OrderFilter(), URGENT, ORDERS)
        job = await job_settled(jobs, job_id)
    finally:
        await jobs.stop()

    assert (job["status"], job["processed"], job["changed"]) == ("done", ORDERS, ORDERS)
    assert len({event.event_id for event in kafka.published}) == ORDERS
    tagged = await mongo_db["orders"].count_documents({"tag_names": "urgent"})
    assert tagged == ORDERS


async def test_a_permanent_error_fails_the_job_with_its_reason(
    mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    jobs, _ = await jobs_over(mongo_db, run_id, FlakyKafka(outages=0))
    await mongo_db["tag_catalog"].update_one({"name": "urgent"}, {"$set": {"active": False}})
    try:
        job_id = await jobs.start("tag_by_filter", OrderFilter(), URGENT, ORDERS)
        job = await job_settled(jobs, job_id)
    finally:
        await jobs.stop()

    assert job["status"] == "failed"
    assert "deactivated" in job["error"]

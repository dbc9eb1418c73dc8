"""The in-memory adapters of the fast tests (``tests/tagger_fakes.py``) against the real
MongoDB ones: the same assertions on both, so a fake that drifts from its adapter fails here."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.bootstrap import RecordedJobs
from services.tagger.commands import Catalog
from services.tagger.manual import ManualChange
from services.tagger.queries import OrderFilter
from services.tagger.read_model import ReadModel
from services.tagger.store import OrderStore, TagExists
from tests.factories import catalog_tag
from tests.tagger_fakes import InMemoryCatalog, InMemoryOrders

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "mongodb"])
async def catalog(request: pytest.FixtureRequest, mongo_db: AsyncDatabase[Any]) -> Catalog:
    if request.param == "memory":
        return InMemoryCatalog()
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    return store


class MongoOrdersAndJobs:
    """The read model's queries and the job store, as the commands get them in bootstrap."""

    def __init__(self, database: AsyncDatabase[Any]) -> None:
        self.read_model = ReadModel(database)
        self.jobs = RecordedJobs(database, editing=None)  # type: ignore[arg-type]  # start() only
        self.count = self.read_model.count
        self.moving_job = self.read_model.moving_job
        self.moved = self.read_model.moved
        self.start = self.jobs.start


@pytest.fixture(params=["memory", "mongodb"])
async def orders(request: pytest.FixtureRequest, mongo_db: AsyncDatabase[Any]) -> Any:
    tags = {"SO-1": ["gift"], "SO-2": ["gift", "vip"], "SO-3": []}
    if request.param == "memory":
        return InMemoryOrders(dict(tags))
    await mongo_db["orders"].insert_many(
        [{"order_no": no, "tag_names": names} for no, names in tags.items()]
    )
    return MongoOrdersAndJobs(mongo_db)


async def test_catalog_adds_finds_updates_and_removes(catalog: Catalog) -> None:
    await catalog.add_catalog_tag(catalog_tag("gift", description="gift wrap"))
    with pytest.raises(TagExists):
        await catalog.add_catalog_tag(catalog_tag("gift"))
    updated = await catalog.update_catalog_tag("gift", {"active": False})
    missing = await catalog.update_catalog_tag("never-was", {"active": False})
    found = await catalog.catalog_tag("gift")
    listed = await catalog.catalog()
    await catalog.remove_catalog_tag("gift")

    assert updated == found == catalog_tag("gift", description="gift wrap", active=False)
    assert missing is None
    assert listed == {"gift": found}
    assert await catalog.catalog_tag("gift") is None


async def test_jobs_moving_a_tag_are_found_and_say_where_it_went(orders: Any) -> None:
    assert await orders.count(OrderFilter(all_tags=["gift"])) == 2
    assert await orders.moving_job("gift") is None
    assert await orders.moved("gift") is None

    rename = ManualChange(("present",), ("gift",), "ana", "rename of tag gift into present")
    job_id = await orders.start("rename", OrderFilter(all_tags=["gift"]), rename, 2)
    other = ManualChange(("vip",), (), "ana")
    await orders.start("tag_by_filter", OrderFilter(all_tags=["vip"]), other, 1)

    assert await orders.moving_job("gift") == job_id
    assert await orders.moved("gift") == ("rename", "present")
    assert await orders.moving_job("vip") is None  # a change by filter moves no tag
    assert await orders.moved("vip") is None

"""Exports on the real stack. The Tag API's order export: exactly the filtered orders in the
asked order, a CSV for programs (no BOM), its row limit. Every export with MongoDB down: 503
with Retry-After before any of the file is sent, never a 200 cut off mid-file or a 500. (What
the customers' and the console's exports hold is tested in test_customer_segments.py and
test_console_api.py.)"""

import csv
import io
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.exports import BOM
from tests.integration.conftest import api_client
from tests.integration.servers import MongoServer, RedisServer
from tests.integration.tagged_orders import matches, tag_api, tagged_dataset
from tests.integration.test_tag_api_outage import api_settings, servers  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


async def test_the_order_export_holds_exactly_the_filtered_orders_newest_first(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    which: dict[str, Any] = {"any_tags": ["urgent", "vip"]}
    async with tag_api(tagger_settings) as client:
        docs = await tagged_dataset(tagger_settings, mongo_db, run_id, count=120)
        answer = await client.get("/orders/export.csv", params=which)
        capped = await client.get("/orders/export.csv", params={"max_rows": 5})
        too_many = await client.get("/orders/export.csv", params={"max_rows": 100_001})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == "attachment; filename=orders.csv"
    assert not answer.content.startswith(BOM.encode())  # read by programs, not Excel
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    expected = sorted(
        (d for d in docs if matches(d, **which)),
        key=lambda d: (d["created_at"], d["order_no"]),
        reverse=True,
    )
    assert expected, "the data set has no urgent or vip order: the test proves nothing"
    assert [r["order_no"] for r in rows] == [d["order_no"] for d in expected]
    for row, doc in zip(rows, expected, strict=True):
        assert row["amount"] == f"{doc['amount_cents'] / 100:.2f}"
        assert row["customer_id"] == doc["customer_id"]
        assert row["created_at"] == doc["created_at"].isoformat()
        assert row["tags"].split() == doc["tag_names"]
    assert len(list(csv.reader(io.StringIO(capped.text)))) == 1 + 5
    assert too_many.status_code == 422
    assert "max_rows" in too_many.text


EXPORTS = [
    "/orders/export.csv",
    "/customers/export.csv",
    "/customers/export.jsonl",
    "/console/api/orders/export.csv",
    "/console/api/orders/export.xlsx",
]


async def test_with_mongodb_down_every_export_answers_503_with_retry_after(
    tagger_settings: TaggerSettings,
    servers: tuple[MongoServer, RedisServer],  # noqa: F811 (the fixture imported above)
) -> None:
    mongo, redis = servers
    async with api_client(create_app(api_settings(tagger_settings, mongo, redis))) as client:
        before = [await client.get(path) for path in EXPORTS]
        await mongo.kill()
        answers = [await client.get(path) for path in EXPORTS]

    assert [a.status_code for a in before] == [200] * len(EXPORTS)
    for answer in answers:
        assert answer.status_code == 503, (answer.request.url, answer.text)
        assert answer.headers["Retry-After"] == str(tagger_settings.tagger_retry_after_s)
        assert answer.json()["detail"] == "MongoDB is unreachable; retry later"

"""The Tag API's order export on the real stack: exactly the filtered orders in the asked order,
a CSV for programs (no BOM), its row limit. (The customers' and the console's exports, which go
through the same helper, are tested in test_customer_segments.py and test_console_api.py.)"""

import csv
import io
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.settings import TaggerSettings
from shared.exports import BOM
from tests.integration.test_tag_api import matches, tag_api, tagged_dataset

pytestmark = pytest.mark.integration


async def test_the_order_export_holds_exactly_the_filtered_orders_newest_first(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    which = {"any_tags": ["urgent", "vip"]}
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

"""The Tag API's reports on the real stack match counts made independently from the stored
orders: tags over time by day (in UTC and in a reader's zone, each order at its own date's
offset), each tag's share (JSON and CSV) and the top customers by spend on a tag."""

from collections import Counter
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.settings import TaggerSettings
from tests.integration.tagged_orders import tag_api, tagged_dataset

pytestmark = pytest.mark.integration


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

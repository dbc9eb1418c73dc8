"""Segments through the Tag API on the real stack: orders go through Kafka and the tagger's
consumer, customers get their tags, and the API finds, exports and counts them."""

import csv
import io
import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.app import create_app
from services.tagger.customers import segments as segments_module
from services.tagger.customers.segments import Segments, TagFilter
from services.tagger.customers.stored import change_of
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from tests.conftest import eventually
from tests.factories import customer_order
from tests.integration.conftest import api_client, publish_events

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
HOME = [("SOFA-1", "家居", "3000.00")]
PHONE = [("PH-1", "electronics", "100.00")]


def stream(run_id: str) -> list[OrderCreated]:
    """Three customers: a home-goods lover who came back (王芳), a one-order phone buyer (张伟)
    and a big home-goods spender (陈静)."""
    plan = [
        ("wang", "王芳", [HOME, HOME, HOME]),
        ("zhang", "张伟", [PHONE]),
        ("chen", "陈静", [HOME * 4, HOME * 4]),
    ]
    events = []
    for customer, name, orders in plan:
        for number, lines in enumerate(orders):
            when = NOW - timedelta(days=10 - number)
            made = customer_order(
                f"{run_id}-{customer}-{number}", f"{run_id}-{customer}", when, lines, name
            )
            events.append(OrderCreated(order=made, occurred_at=when))
    return events


@pytest.fixture
async def client(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> Any:
    async with api_client(create_app(tagger_settings)) as client:
        await publish_events(tagger_settings, stream(run_id))

        async def all_customers_tagged() -> bool:
            return await mongo_db["customers"].count_documents({"orders": {"$gte": 1}}) == 3

        await eventually(all_customers_tagged, within=90)
        yield client


async def _ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [c["customer_id"] for c in answer.json()["customers"]]


async def test_find_customers_by_tags_all_any_none_and_figures(
    client: httpx.AsyncClient, run_id: str
) -> None:
    wang, zhang, chen = (f"{run_id}-{c}" for c in ("wang", "zhang", "chen"))

    assert await _ids(await client.get("/customers", params={"all_tags": "prefers:家居"})) == [
        chen,
        wang,
    ]  # by spend, largest first
    returning_no_big = {"all_tags": "lifecycle:returning", "none_tags": "high-spender"}
    assert await _ids(await client.get("/customers", params=returning_no_big)) == [wang]
    any_of = [("any_tags", "lifecycle:new"), ("any_tags", "high-spender")]
    assert await _ids(await client.get("/customers", params=any_of)) == [chen, zhang]
    assert await _ids(await client.get("/customers", params={"spend_max": "100"})) == [zhang]
    by_last = {"sort": "-last_order", "orders_min": "2"}
    assert await _ids(await client.get("/customers", params=by_last)) == [wang, chen]

    page = (await client.get("/customers", params={"limit": 2})).json()
    rest = await _ids(await client.get("/customers", params={"cursor": page["next_cursor"]}))
    assert [c["customer_id"] for c in page["customers"]] + rest == [chen, wang, zhang]

    found = (await client.get("/customers", params={"customer_id": chen})).json()["customers"]
    assert found[0]["spend"] == "24000.00"
    assert found[0]["orders"] == 2
    assert found[0]["top_category"] == "家居"
    high = next(t for t in found[0]["tags"] if t["name"] == "high-spender")
    assert high["rule_id"] == "behaviour.high-spender"
    assert high["reason"] == "spend 24000.00 over 365 days (≥ 20000) → high spender"


async def test_bad_filters_are_refused_naming_the_parameter(client: httpx.AsyncClient) -> None:
    answer = await client.get("/customers", params={"spend_min": "abc"})
    assert answer.status_code == 422
    assert "spend_min" in answer.text
    answer = await client.get("/customers", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert answer.status_code == 422
    assert "cursor" in answer.text
    assert (await client.get("/customers/nobody")).status_code == 404


async def test_export_csv_for_excel_and_jsonl(
    client: httpx.AsyncClient, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"all_tags": "prefers:家居"}
    answer = await client.get("/customers/export.csv", params=params)
    assert answer.status_code == 200
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["customer_id", "name", "company"]
    assert [row[1] for row in rows[1:]] == ["陈静", "王芳"]
    assert "prefers:家居" in rows[1][-1].split()

    answer = await client.get("/customers/export.jsonl", params=params)
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["name"] for line in lines] == ["陈静", "王芳"]
    assert {"name", "reason", "rule_id", "at"} <= set(lines[0]["tags"][0])
    stored = {line["name"]: _reason(line, "prefers:家居") for line in lines}
    assert all(reason.startswith("家居: ") for reason in stored.values()), stored

    # in the reader's words with lang, a chunk of customers at a time (one here)
    monkeypatch.setattr(segments_module, "EXPORT_CHUNK", 1)
    answer = await client.get("/customers/export.jsonl", params={**params, "lang": "zh-CN"})
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["name"] for line in lines] == ["陈静", "王芳"]
    chinese = {line["name"]: _reason(line, "prefers:家居") for line in lines}
    assert all(re.fullmatch(r"家居：365 天内 \d+ 单，占消费 \d+%", r) for r in chinese.values())
    assert (await client.get("/customers/export.jsonl", params={"lang": "fr"})).status_code == 422


def _reason(line: dict[str, Any], tag: str) -> str:
    return str(next(t["reason"] for t in line["tags"] if t["name"] == tag))


async def test_customer_page_and_manual_tags(client: httpx.AsyncClient, run_id: str) -> None:
    wang = f"{run_id}-wang"
    answer = await client.post(f"/customers/{wang}/tags", json={"tag": "vip", "reason": "生日"})
    assert answer.status_code == 200, answer.text
    refused = await client.delete(f"/customers/{wang}/tags/lifecycle:returning")
    assert refused.status_code == 409
    assert "lifecycle.returning" in refused.json()["detail"]
    bad = await client.post(f"/customers/{wang}/tags", json={"tag": "Not A Tag"})
    assert bad.status_code == 422
    # a tag the rules name from the data follows the figures: never set by hand
    ruled = await client.post(f"/customers/{wang}/tags", json={"tag": "prefers:数码"})
    assert ruled.status_code == 422
    assert [e["field"] for e in ruled.json()["errors"]] == ["tag"]
    assert "prefers:数码" in ruled.json()["detail"]

    customer = (await client.get(f"/customers/{wang}")).json()
    vip = next(t for t in customer["tags"] if t["name"] == "vip")
    assert vip["source"] == "manual"
    assert vip["reason"] == "生日"
    assert customer["history"][0]["tag"] == "vip"
    assert customer["history"][0]["by"] == "local-dev"
    returning = next(t for t in customer["tags"] if t["name"] == "lifecycle:returning")
    assert returning["reason"] == "3 orders → returning"  # as stored: the rule's own words

    chinese = (await client.get(f"/customers/{wang}", params={"lang": "zh-CN"})).json()
    tags = {t["name"]: t["reason"] for t in chinese["tags"]}
    assert tags["lifecycle:returning"] == "已下 3 单 → 复购客户"
    assert tags["vip"] == "生日"  # a person's reason stays as written
    added = next(h for h in chinese["history"] if h["tag"] == "lifecycle:returning")
    assert re.fullmatch(r"已下 [23] 单 → 复购客户", added["reason"])  # 2 if its batch ended there
    assert (await client.get(f"/customers/{wang}", params={"lang": "fr"})).status_code == 422
    # the list's reasons too: as stored without lang, in the reader's words with it
    listed = {"customer_id": wang}
    found = (await client.get("/customers", params=listed)).json()["customers"]
    assert {t["name"]: t["reason"] for t in found[0]["tags"]}["lifecycle:returning"] == (
        "3 orders → returning"
    )
    found = (await client.get("/customers", params={**listed, "lang": "zh-CN"})).json()
    listed_tags = {t["name"]: t["reason"] for t in found["customers"][0]["tags"]}
    assert listed_tags["lifecycle:returning"] == "已下 3 单 → 复购客户"
    assert (await client.get("/customers", params={**listed, "lang": "fr"})).status_code == 422
    assert [o["order_no"] for o in customer["orders_list"]] == [
        f"{run_id}-wang-2",
        f"{run_id}-wang-1",
        f"{run_id}-wang-0",
    ]

    assert (await client.delete(f"/customers/{wang}/tags/vip")).status_code == 204
    customer = (await client.get(f"/customers/{wang}")).json()
    assert "vip" not in customer["tag_names"]
    assert customer["history"][0]["change"] == "removed"

    sizes = (
        await client.get("/customers/segment-size", params={"all_tags": "vip", "days": 2})
    ).json()
    assert [point["customers"] for point in sizes] == [0, 0]  # added and removed today


async def test_segment_size_over_time_from_tag_history(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    def at(day: int) -> datetime:
        return datetime(2026, 6, day, 12, tzinfo=UTC)

    def entry(day: int, change: str, tag: str) -> dict[str, Any]:
        return {"at": at(day), "change": change, "tag": tag}

    await mongo_db["customers"].insert_many(
        [
            {  # lapsed on the 3rd, back on the 5th
                "_id": "a",
                "first_order_at": at(1),
                "tag_names": ["lifecycle:returning"],
                "history": [
                    entry(1, "added", "lifecycle:returning"),
                    entry(3, "removed", "lifecycle:returning"),
                    entry(3, "added", "lifecycle:lapsed"),
                    entry(5, "removed", "lifecycle:lapsed"),
                    entry(5, "added", "lifecycle:returning"),
                ],
            },
            {  # returning from the 2nd, VIP from the 4th
                "_id": "b",
                "first_order_at": at(2),
                "tag_names": ["lifecycle:returning", "vip"],
                "history": [entry(2, "added", "lifecycle:returning"), entry(4, "added", "vip")],
            },
        ]
    )
    segments = Segments(mongo_db, None)  # the documents hold reasons as sentences

    returning = TagFilter(all_tags=["lifecycle:returning"])
    sizes = await segments.size_over_time(returning, 6, date(2026, 6, 6))
    assert [(p["date"][-2:], p["customers"]) for p in sizes] == [
        ("01", 1),
        ("02", 2),
        ("03", 1),
        ("04", 1),
        ("05", 2),
        ("06", 2),
    ]
    not_vip = TagFilter(any_tags=["lifecycle:returning", "lifecycle:lapsed"], none_tags=["vip"])
    sizes = await segments.size_over_time(not_vip, 6, date(2026, 6, 6))
    assert [p["customers"] for p in sizes] == [1, 2, 2, 1, 1, 1]


def replayed_sizes(
    customers: list[dict[str, Any]], which: TagFilter, days: int, today: date
) -> list[int]:
    """An independent count: each customer's tags at the end of each day, played forward from
    nothing through its whole history."""
    sizes = []
    for back in range(days - 1, -1, -1):
        end = datetime.combine(today - timedelta(days=back), datetime.max.time(), UTC)
        size = 0
        for customer in customers:
            tags: set[str] = set()
            for entry in sorted(customer["history"], key=lambda h: h["at"]):
                if entry["at"] <= end:
                    (tags.add if change_of(entry) == "added" else tags.discard)(entry["tag"])
            first = customer["first_order_at"]
            size += first is not None and first <= end and which.holds_for(tags)
        sizes.append(size)
    return sizes


async def test_segment_size_counted_back_from_now_matches_a_full_replay(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Random histories over 400 days: the count from today's members plus the customers who
    changed in the window equals replaying every customer."""
    rng = random.Random(17)
    today = date(2026, 6, 30)
    start = datetime(2025, 5, 26, tzinfo=UTC)
    names = ["lifecycle:new", "lifecycle:returning", "lifecycle:lapsed", "vip", "high-spender"]
    customers = []
    for number in range(400):
        first = start + timedelta(minutes=rng.randrange(400 * 24 * 60))
        moments = sorted(
            first + timedelta(minutes=rng.randrange(1, 400 * 24 * 60)) for _ in range(9)
        )
        held: set[str] = set()
        history = []
        for moment in [m for m in moments if m.date() <= today][: rng.randrange(0, 9)]:
            tag = rng.choice(names)
            history.append(
                {"at": moment, "change": "removed" if tag in held else "added", "tag": tag}
            )
            (held.discard if tag in held else held.add)(tag)
        customers.append(
            {
                "_id": f"c{number}",
                "first_order_at": None if number % 50 == 0 else first,  # none held
                "tag_names": sorted(held),
                "history": history,
            }
        )
    await mongo_db["customers"].insert_many([dict(c) for c in customers])
    segments = Segments(mongo_db, None)  # the documents hold reasons as sentences
    filters = [
        TagFilter(all_tags=["lifecycle:returning"]),
        TagFilter(any_tags=["vip", "high-spender"], none_tags=["lifecycle:lapsed"]),
        TagFilter(none_tags=["vip"]),
        TagFilter(),
    ]

    for which in filters:
        for days in (1, 45):
            sizes = await segments.size_over_time(which, days, today)
            expected = replayed_sizes(customers, which, days, today)
            assert [p["customers"] for p in sizes] == expected, (which, days)
    # the data set really moves in the window: not a flat line
    assert len(set(replayed_sizes(customers, filters[0], 45, today))) > 3

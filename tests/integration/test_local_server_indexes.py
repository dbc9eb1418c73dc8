"""The local MongoDB-wire server's unique indexes also serve queries that name more fields than
the index (deploy/local/MongoWireServer.java): the answers must be exactly MongoDB's, whichever
index finds the candidates."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.integration

DOCUMENTS = [
    {
        "alert_id": f"a{i}",
        "version": i % 3,
        "order_no": f"o{i // 2}",
        **({"code": f"c{i}"} if i % 4 else {}),  # a sparse index's field, on 3 in 4
        "deliveries": [
            {"channel": "hook", "status": "pending" if i % 2 else "delivered"},
            {"channel": "robot", "status": "pending"},
        ],
    }
    for i in range(40)
]


def ids(documents: list[dict[str, Any]]) -> list[str]:
    return sorted(d["alert_id"] for d in documents)


@pytest.fixture
async def alerts(mongo_db: AsyncDatabase[dict[str, Any]]) -> Any:
    collection = mongo_db["alerts"]
    await collection.create_index([("alert_id", ASCENDING)], unique=True)
    await collection.create_index([("code", ASCENDING)], unique=True, sparse=True)
    await collection.create_index([("order_no", ASCENDING), ("version", ASCENDING)], unique=True)
    await collection.insert_many([dict(d) for d in DOCUMENTS])
    return collection


async def test_finds_naming_an_indexed_field_and_more_answer_exactly(alerts: Any) -> None:
    pending_hook = {"$elemMatch": {"channel": "hook", "status": "pending"}}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"alert_id": "a5", "version": 2}, ["a5"]),
        ({"alert_id": "a5", "version": 1}, []),
        (
            {"alert_id": {"$in": ["a1", "a2", "a3", "a9"]}, "deliveries": pending_hook},
            ["a1", "a3", "a9"],
        ),
        ({"alert_id": {"$in": ["a1", "a2"]}, "version": {"$gt": 1}}, ["a2"]),
        ({"alert_id": "a7", "deliveries.channel": {"$ne": "hook"}}, []),
        ({"alert_id": "a7", "deliveries.channel": {"$ne": "email"}}, ["a7"]),
        ({"code": "c5", "version": 2}, ["a5"]),
        ({"code": "c4", "version": 1}, []),  # a4 has no code: the sparse index holds no key
        ({"alert_id": "a8", "$or": [{"version": 2}, {"order_no": "o4"}]}, ["a8"]),
        ({"alert_id": "a8", "$or": [{"version": 0}, {"order_no": "o9"}]}, []),
        ({"order_no": "o3", "version": 0}, ["a6"]),  # the compound index's own fields
        ({"order_no": "o3", "version": 0, "alert_id": "a7"}, []),
    ]
    for query, expected in cases:
        assert ids(await alerts.find(query).to_list(None)) == expected, query


async def test_updates_naming_an_indexed_field_and_more_change_exactly_the_matches(
    alerts: Any,
) -> None:
    missed = await alerts.update_one({"alert_id": "a4", "version": 0}, {"$set": {"seen": True}})
    assert missed.modified_count == 0  # a4 is at version 1
    hit = await alerts.update_one({"alert_id": "a4", "version": 1}, {"$set": {"version": 7}})
    assert hit.modified_count == 1
    claimed = await alerts.update_many(
        {
            "alert_id": {"$in": ["a1", "a2", "a3", "a4"]},
            "deliveries": {"$elemMatch": {"channel": "hook", "status": "pending"}},
        },
        {"$set": {"deliveries.$[d].status": "sending"}},
        array_filters=[{"d.channel": "hook"}],
    )
    assert claimed.modified_count == 2  # a1, a3: the even ones were delivered
    sending = {"deliveries": {"$elemMatch": {"channel": "hook", "status": "sending"}}}
    assert ids(await alerts.find(sending).to_list(None)) == ["a1", "a3"]
    assert (await alerts.find_one({"alert_id": "a4"}))["version"] == 7
    # the index still finds the changed documents by their (unchanged) keys
    assert ids(await alerts.find({"alert_id": "a4", "version": 7}).to_list(None)) == ["a4"]


async def test_non_unique_indexes_answer_equality_exactly_through_inserts_updates_and_deletes(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    orders = mongo_db["orders"]
    await orders.create_index([("order_no", ASCENDING)])
    await orders.create_index([("tags", ASCENDING)])  # multikey
    await orders.create_index([("deliveries.status", ASCENDING)])  # in an array of documents
    await orders.create_index([("status", ASCENDING), ("n", ASCENDING)])  # compound
    await orders.insert_many(
        [
            {
                "order_no": f"o{i % 7}",
                "n": i,  # an int here, asked as a float below
                "status": "open" if i % 3 else "done",
                "tags": [f"t{i % 4}", f"t{i % 5}"],
                "deliveries": [{"status": "pending" if i % 2 else "sent"}],
                **({"region": "east"} if i % 6 else {}),
            }
            for i in range(60)
        ]
    )
    await orders.update_many({"tags": "t1"}, {"$set": {"tags": ["moved"], "status": "done"}})
    await orders.update_one({"n": 11}, {"$set": {"deliveries.0.status": "failed"}})
    await orders.update_one({"n": 14}, {"$push": {"tags": "pushed"}, "$set": {"x": 1}})
    await orders.delete_many({"order_no": "o3"})

    async def numbers(query: dict[str, Any]) -> list[int]:
        return sorted(d["n"] for d in await orders.find(query).to_list(None))

    everything = await orders.find({}).to_list(None)
    expected_moved = sorted(d["n"] for d in everything if d["tags"] == ["moved"])
    assert await numbers({"tags": "moved"}) == expected_moved
    assert await numbers({"tags": "t1"}) == []
    assert await numbers({"tags": {"$in": ["t2", "t0"]}}) == sorted(
        d["n"] for d in everything if {"t2", "t0"} & set(d["tags"])
    )
    assert await numbers({"order_no": "o3"}) == []
    assert await numbers({"order_no": {"$in": ["o1", "o2"]}, "status": "open"}) == sorted(
        d["n"] for d in everything if d["order_no"] in ("o1", "o2") and d["status"] == "open"
    )
    assert await numbers({"deliveries.status": "failed"}) == [11]
    # an update that leaves an index's field alone keeps its entries; one that grows it adds
    assert await numbers({"tags": "pushed"}) == [14]
    assert await numbers({"order_no": "o0"}) == [i for i in range(60) if i % 7 == 0]
    assert await numbers({"deliveries.status": "pending"}) == sorted(
        d["n"] for d in everything if d["deliveries"][0]["status"] == "pending"
    )
    assert await numbers({"status": "done", "n": {"$lt": 20}}) == sorted(
        d["n"] for d in everything if d["status"] == "done" and d["n"] < 20
    )
    assert await numbers({"n": 12.0}) == ([12] if any(d["n"] == 12 for d in everything) else [])
    # not answered by an index (a missing field, a range): the scan gives the same answers
    assert await numbers({"region": None}) == sorted(
        d["n"] for d in everything if "region" not in d
    )
    assert await numbers({"order_no": {"$gt": "o5"}}) == sorted(
        d["n"] for d in everything if d["order_no"] > "o5"
    )
    deleted = await orders.delete_many({"tags": "moved"})
    assert deleted.deleted_count == len(expected_moved)
    assert await numbers({"tags": "moved"}) == []


async def test_ids_the_server_makes_for_upserts_follow_time_as_a_mongodbs_do(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """Random ids scattered each upserted document over its collection's map and `_id` index:
    every commit rewrote pages all over both (the tagger's history upserts)."""
    entries = mongo_db["history"]
    before = datetime.now(UTC).replace(microsecond=0)
    for i in range(60):  # replacements and operator updates: the library makes both ids
        if i % 2:
            await entries.replace_one({"n": i}, {"n": i, "kind": "replaced"}, upsert=True)
        else:
            await entries.update_one({"n": i}, {"$set": {"kind": "set"}}, upsert=True)

    made = [d["_id"] async for d in entries.find({}, {"_id": 1}).sort("n", ASCENDING)]

    assert len(made) == 60
    assert made == sorted(made), "each id after the one made before it"
    assert all(before <= i.generation_time <= datetime.now(UTC) for i in made)


async def test_numeric_bounds_and_elem_match_are_answered_exactly_by_the_fewest_candidates(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The notifier's sweeps ({notice_due: {$gt: 0}}, {deliveries: {$elemMatch: {follow_up:
    {$gt: 0}, status: {$in: [...]}}}}) are answered by a plain index, the one with the fewest
    candidates, and give what a scan gives: values of other types, nulls, missing fields,
    zeros and big integers included; so are bounds that are times (the customers' review
    sweep, {next_review_at: {$lte: now}})."""
    alerts = mongo_db["alerts"]
    await alerts.create_index([("deliveries.status", ASCENDING)])
    await alerts.create_index([("notice_due", ASCENDING)])
    await alerts.create_index([("deliveries.follow_up", ASCENDING)])
    dues: list[Any] = [None, 0, 3, 7.5, -1, "5", 2**62, [4, 0], {"n": 5}]
    await alerts.insert_many(
        [
            {
                "n": i,
                **({"notice_due": dues[i % len(dues)]} if i % 10 else {}),
                "deliveries": [
                    {"status": "delivered" if i % 3 else "sending", "follow_up": i % 4},
                    {"status": "pending", **({"follow_up": None} if i % 5 else {})},
                ],
            }
            for i in range(90)
        ]
    )
    await alerts.update_many({"n": {"$in": [1, 2]}}, {"$set": {"deliveries.0.follow_up": 9}})
    everything = await alerts.find({}).to_list(None)

    def numeric(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    async def numbers(query: dict[str, Any]) -> list[int]:
        return sorted(d["n"] for d in await alerts.find(query).to_list(None))

    def due(value: Any, low: float, high: float) -> bool:
        values = value if isinstance(value, list) else [value]
        return any(numeric(v) and low < v <= high for v in values)

    assert await numbers({"notice_due": {"$gt": 0}}) == sorted(
        d["n"] for d in everything if due(d.get("notice_due"), 0, float("inf"))
    )
    assert await numbers({"notice_due": {"$gt": 0, "$lte": 5}}) == sorted(
        d["n"] for d in everything if due(d.get("notice_due"), 0, 5)
    )
    settled = ["delivered", "failed"]
    assert await numbers(
        {"deliveries": {"$elemMatch": {"follow_up": {"$gt": 0}, "status": {"$in": settled}}}}
    ) == sorted(
        d["n"]
        for d in everything
        if any(
            numeric(x.get("follow_up")) and x["follow_up"] > 0 and x["status"] in settled
            for x in d["deliveries"]
        )
    )
    assert await numbers({"deliveries": {"$elemMatch": {"status": "sending"}}}) == sorted(
        d["n"] for d in everything if d["deliveries"][0]["status"] == "sending"
    )
    # bounds that are times: the documents holding a time in range
    await alerts.create_index([("due_at", ASCENDING)])
    start = datetime(2026, 11, 26, tzinfo=UTC)
    for n in range(0, 90, 4):
        at: Any = start + timedelta(hours=n) if n % 8 else str(n)  # some of another type
        await alerts.update_one({"n": n}, {"$set": {"due_at": at}})
    everything = await alerts.find({}).to_list(None)
    cutoff = start + timedelta(hours=40)
    assert await numbers({"due_at": {"$lte": cutoff}}) == sorted(
        d["n"]
        for d in everything
        if isinstance(d.get("due_at"), datetime) and d["due_at"] <= cutoff
    )
    # not numeric bounds: still the scan's answer
    assert await numbers({"notice_due": {"$gt": "4"}}) == sorted(
        d["n"] for d in everything if d.get("notice_due") == "5"
    )


async def test_a_bound_on_a_compound_indexs_second_field_narrows_exactly(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """{status: "open", created_at: {$lte: T}} (the escalation sweep) is answered by the
    (status, created_at) index without reading the open alerts created after T, and gives
    what a scan gives through updates of either field and deletes."""
    alerts = mongo_db["alerts"]
    await alerts.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
    start = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    created: list[Any] = [start + timedelta(minutes=i) for i in range(50)]
    created[7] = "yesterday"  # another type: never left out by a bound on times
    created[8] = [start, start + timedelta(days=9)]  # an array: never left out either
    await alerts.insert_many(
        [
            {"n": i, "status": "open" if i % 3 else "resolved", "created_at": created[i]}
            for i in range(50)
        ]
    )
    await alerts.update_one({"n": 40}, {"$set": {"created_at": start - timedelta(hours=1)}})
    await alerts.update_one({"n": 3}, {"$set": {"status": "open"}})
    await alerts.update_one({"n": 4}, {"$unset": {"created_at": ""}})
    await alerts.delete_many({"n": {"$in": [1, 2]}})
    everything = await alerts.find({}).to_list(None)
    cutoff = start + timedelta(minutes=20)

    def before(value: Any, inclusive: bool) -> bool:
        values = value if isinstance(value, list) else [value]
        return any(
            isinstance(v, datetime) and (v <= cutoff if inclusive else v < cutoff) for v in values
        )

    async def numbers(query: dict[str, Any]) -> list[int]:
        return sorted(d["n"] for d in await alerts.find(query).to_list(None))

    for operator, inclusive in (("$lte", True), ("$lt", False)):
        assert await numbers({"status": "open", "created_at": {operator: cutoff}}) == sorted(
            d["n"]
            for d in everything
            if d["status"] == "open" and before(d.get("created_at"), inclusive)
        )
    later = {"$gt": cutoff, "$lte": start + timedelta(minutes=45)}
    assert await numbers({"status": "open", "created_at": later}) == sorted(
        d["n"]
        for d in everything
        if d["status"] == "open"
        and isinstance(d.get("created_at"), datetime)
        and cutoff < d["created_at"] <= start + timedelta(minutes=45)
    )


async def test_an_index_answers_bounds_as_the_scan_does_at_the_edges_of_numbers(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The same documents with and without the index, the same queries: -0.0 against 0,
    fractions beyond 32-bit integers, NaN, big integers, mixed types and arrays, alone and as
    a compound index's second field."""
    values: list[Any] = [0, -0.0, 0.5, 3_000_000_000.5, 3e9, 2**62, float("nan"), -7, "5", None]
    values += [[1, 3_000_000_000.5], {"x": 1}]
    documents = [
        {"n": i, "v": v, "kind": "k" if i % 2 else "j", "w": values[(i * 5) % len(values)]}
        for i, v in enumerate(values * 3)
    ]
    indexed, scanned = mongo_db["indexed"], mongo_db["scanned"]
    await indexed.create_index([("v", ASCENDING)])
    await indexed.create_index([("kind", ASCENDING), ("w", ASCENDING)])
    await indexed.insert_many([dict(d) for d in documents])
    await scanned.insert_many([dict(d) for d in documents])
    bounds: list[dict[str, Any]] = [
        {"$lte": -0.0}, {"$gte": 0}, {"$lt": 0}, {"$lte": 3e9}, {"$gt": 3e9},
        {"$gt": float("nan")}, {"$gte": 2**62}, {"$gt": -10, "$lt": 1}, {"$lte": 3_000_000_000},
    ]  # fmt: skip
    for bound in bounds:
        for query in ({"v": bound}, {"kind": "k", "w": bound}):
            got = sorted(d["n"] for d in await indexed.find(query).to_list(None))
            want = sorted(d["n"] for d in await scanned.find(query).to_list(None))
            assert got == want, query

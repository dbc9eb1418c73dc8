"""What a segment's size over time costs as customers grow: the count back from now (today's
members by index, then only the customers who changed in the window) against the replay of
every customer who ever held a named tag (how it was counted before).

Customers with a year or two of tag history (lifecycle, VIP, spend tags; a few changes each)
are written into a scratch database of the MongoDB-wire server in ORDERTAG_MONGO_URL, with the
customers' indexes; each way is timed on the same filters (median of 3).

    uv run python -m bench.segment_size_bench [customers ...]
"""

import asyncio
import random
import statistics
import sys
import time as clock
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.customers.segment_sizes import _aware
from services.tagger.customers.segments import Segments, TagFilter
from services.tagger.customers.store import CustomerStore
from services.tagger.customers.stored import change_of
from shared.settings import Settings

TODAY = date(2026, 11, 26)
TAGS = ["lifecycle:new", "lifecycle:returning", "lifecycle:lapsed", "vip", "high-spender"]
FILTERS = {
    "returning": TagFilter(all_tags=["lifecycle:returning"]),
    "vip or high-spender, not lapsed": TagFilter(
        any_tags=["vip", "high-spender"], none_tags=["lifecycle:lapsed"]
    ),
}


def customers(count: int, seed: int = 17) -> list[dict[str, Any]]:
    """First orders over two years; 0-8 tag changes each between the first order and today."""
    rng = random.Random(seed)
    now = datetime.combine(TODAY, time(12), UTC)
    made = []
    for number in range(count):
        first = now - timedelta(minutes=rng.randrange(730 * 24 * 60))
        span = int((now - first).total_seconds() // 60) or 1
        held: set[str] = set()
        history = []
        for moment in sorted(
            first + timedelta(minutes=rng.randrange(span)) for _ in range(rng.randrange(9))
        ):
            tag = rng.choice(TAGS)
            change = "removed" if tag in held else "added"
            (held.discard if tag in held else held.add)(tag)
            history.append({"at": moment, "change": change, "tag": tag, "source": "rule"})
        made.append(
            {
                "_id": f"C{number:07d}",
                "first_order_at": first,
                "tag_names": sorted(held),
                "tags": [{"name": t} for t in sorted(held)],
                "history": history,
                "orders": 1 + len(history) // 2,
                "spend_cents": rng.randrange(10_000, 5_000_000),
            }
        )
    return made


async def replay_everyone(
    database: AsyncDatabase[dict[str, Any]], which: TagFilter, days: int
) -> list[int]:
    """Before: every customer who ever held a named tag read and replayed (the old code)."""
    ends = [datetime.combine(TODAY - timedelta(days=n), time.max, UTC) for n in range(days)][::-1]
    counts = [0] * days
    named = [*which.all_tags, *which.any_tags]
    query = {"$or": [{"tag_names": {"$in": named}}, {"history.tag": {"$in": named}}]}
    fields = {"tag_names": 1, "history": 1, "first_order_at": 1}
    async for document in database["customers"].find(query, fields).batch_size(1000):
        tags = set(document.get("tag_names", []))
        undo = sorted(document.get("history", []), key=lambda h: h["at"], reverse=True)
        first = _aware(document["first_order_at"])
        position = 0
        for index in range(days - 1, -1, -1):
            while position < len(undo) and _aware(undo[position]["at"]) > ends[index]:
                entry = undo[position]
                (tags.discard if change_of(entry) == "added" else tags.add)(entry["tag"])
                position += 1
            counts[index] += first <= ends[index] and which.holds_for(tags)
    return counts


async def timed(run: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(3):
        started = clock.perf_counter()
        result = await run()
        times.append(clock.perf_counter() - started)
    return statistics.median(times), result


async def measure(count: int) -> None:
    settings = Settings()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    name = f"bench-segments-{uuid.uuid4().hex[:8]}"
    database = client[name]
    try:
        await CustomerStore(database, None).ensure_indexes()  # written here as sentences
        made = customers(count)
        for start in range(0, count, 2000):
            await database["customers"].insert_many(made[start : start + 2000])
        segments = Segments(database, None)
        for label, which in FILTERS.items():
            for days in (30, 366):
                since = datetime.combine(TODAY - timedelta(days=days - 1), time.max, UTC)
                named = sorted({*which.all_tags, *which.any_tags, *which.none_tags})
                ever = {*which.all_tags, *which.any_tags}
                held = [ever & ({*c["tag_names"]} | {h["tag"] for h in c["history"]}) for c in made]
                replayed = sum(1 for h in held if h)
                moved = sum(  # what the count back reads (segment_sizes._moved_since)
                    1
                    for c, h in zip(made, held, strict=True)
                    if h
                    and (
                        c["first_order_at"] > since
                        or any(e["at"] > since and e["tag"] in named for e in c["history"])
                    )
                )
                new_s, new = await timed(
                    lambda w=which, d=days: segments.size_over_time(w, d, TODAY)
                )
                old_s, old = await timed(lambda w=which, d=days: replay_everyone(database, w, d))
                assert [p["customers"] for p in new] == old, (label, days)
                print(
                    f"{count:>8} customers | {label:<32} | {days:>3} days | read {moved:>7}"
                    f" ({moved / count:5.1%}) | count back {new_s * 1000:8.0f} ms"
                    f" | replay everyone: read {replayed:>7}, {old_s * 1000:8.0f} ms"
                    f" | x{old_s / new_s:5.1f}"
                )
    finally:
        await client.drop_database(name)
        await client.close()


def main() -> None:
    for count in [int(a) for a in sys.argv[1:]] or [10_000, 50_000]:
        asyncio.run(measure(count))


if __name__ == "__main__":
    main()

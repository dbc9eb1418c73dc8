"""A segment's size over time: how many customers it held at the end of each past day,
counted back from today's members through the history of the customers who moved."""

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.collection import AsyncCollection

from services.tagger.customers.stored import change_of

if TYPE_CHECKING:
    from services.tagger.customers.segments import TagFilter


async def size_over_time(
    customers: AsyncCollection[dict[str, Any]], which: "TagFilter", days: int, today: date
) -> list[dict[str, Any]]:
    """Customers in the segment at the end of each of the last ``days`` days (UTC).

    Counted back from now: the segment's size today is one indexed count; only customers
    whose membership can have moved since the end of the first day (a named tag changed
    in their history since, or their first order came since) are read, and each of those
    is replayed back through its history entries of the window (projected on the server).
    The cost follows the customers who changed in the window, not every customer who ever
    held a tag (docs/customers.md)."""
    ends = [datetime.combine(today - timedelta(days=n), time.max, UTC) for n in range(days)]
    ends.reverse()
    counts = [await customers.count_documents(which.tag_query())] * days
    cursor = await customers.aggregate(
        [
            {"$match": _moved_since(which, ends[0])},
            {"$project": _replayed_fields(which, ends[0])},
        ],
        batchSize=1000,
    )
    async for document in cursor:
        for index, member in enumerate(_membership(document, which, ends)):
            counts[index] += member
    return [
        {"date": end.date().isoformat(), "customers": count}
        for end, count in zip(ends, counts, strict=True)
    ]


def _moved_since(which: "TagFilter", since: datetime) -> dict[str, Any]:
    """Customers whose membership may differ between ``since`` and now: a tag the filter names
    was added or removed after it, or the first order came after it (or never: the count of
    today's members goes by tags alone). Served by the ``(history.tag, history.at)`` and
    ``first_order_at`` indexes."""
    named = sorted({*which.all_tags, *which.any_tags, *which.none_tags})
    moved: list[dict[str, Any]] = [{"first_order_at": {"$gt": since}}, {"first_order_at": None}]
    if named:
        changed = {"tag": {"$in": named}, "at": {"$gt": since}}
        moved.append({"history": {"$elemMatch": changed}})
    positive = sorted({*which.all_tags, *which.any_tags})
    if not positive:
        return {"$or": moved}
    # a customer that never held a tag it needs was never in the segment: nothing to replay
    held = [{"tag_names": {"$in": positive}}, {"history.tag": {"$in": positive}}]
    return {"$and": [{"$or": moved}, {"$or": held}]}


def _replayed_fields(which: "TagFilter", since: datetime) -> dict[str, Any]:
    """What the replay needs, and only that: the history entries after ``since`` of the tags
    the filter names (an entry before it is never undone), not the customer's whole history."""
    named = sorted({*which.all_tags, *which.any_tags, *which.none_tags})
    kept = {"$and": [{"$gt": ["$$h.at", since]}, {"$in": ["$$h.tag", named]}]}
    return {
        "tag_names": 1,
        "first_order_at": 1,
        "history": {"$filter": {"input": {"$ifNull": ["$history", []]}, "as": "h", "cond": kept}},
    }


def _membership(document: dict[str, Any], which: "TagFilter", ends: list[datetime]) -> list[int]:
    """How this customer moves each day's count away from the count of today's members (by
    tags alone): +1 where it was in the segment but is not counted now, -1 the other way
    round, else 0."""
    tags = set(document.get("tag_names", []))
    first = document.get("first_order_at")
    first = _aware(first) if first is not None else None

    def member(end: datetime) -> bool:
        return first is not None and first <= end and which.holds_for(tags)

    now = which.holds_for(tags)  # as the count of today's members saw it
    undo = sorted(document.get("history", []), key=lambda h: _aware(h["at"]), reverse=True)
    moves = [0] * len(ends)
    position = 0
    for index in range(len(ends) - 1, -1, -1):
        end = ends[index]
        while position < len(undo) and _aware(undo[position]["at"]) > end:
            entry = undo[position]
            (tags.discard if change_of(entry) == "added" else tags.add)(entry["tag"])
            position += 1
        moves[index] = int(member(end)) - int(now)
    return moves


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

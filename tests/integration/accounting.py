"""Checks of a run's outcome read straight from MongoDB and Redis: every order stored once, each
customer's figures equal to a recount, each order tagged with the figures it really had."""

from collections import defaultdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.tagger.figures import CustomerFigures
from services.tagger.order_record import OrderRecord
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleSet
from shared.stored_order import figures_record
from tests.generated import Expected


async def stored_count(db: AsyncDatabase[dict[str, Any]]) -> int:
    return await db["orders"].count_documents({})


async def assert_figures_recount_and_tags(
    redis: Redis, db: AsyncDatabase[dict[str, Any]], expected: Expected
) -> None:
    """Figures equal a recount from MongoDB (and the stream's own count); each order was tagged
    with the figures its customer really had before it."""
    count: dict[str, int] = defaultdict(int)
    cents: dict[str, int] = defaultdict(int)
    wrong_prior, new_but_returning = [], []
    async for order in db["orders"].find({}, {"_id": 0}):
        if not order.get("contribution_reversed"):  # stored only when true
            count[order["customer_id"]] += 1
            cents[order["customer_id"]] += order["amount_cents"]
        prior = expected.prior_orders[order["order_no"]]
        if FiguresSnapshot.from_record(figures_record(order["figures"])).prior_order_count != prior:
            wrong_prior.append(order["order_no"])
        if prior > 0 and "new-customer" in order["tag_names"]:
            new_but_returning.append(order["order_no"])

    figures = CustomerFigures(redis)
    differing = []
    for customer_id in expected.order_count:
        totals = await figures.totals(customer_id)
        recount = (count[customer_id], cents[customer_id])
        live = (totals.order_count, int(totals.lifetime_spend * 100))
        spend = expected.lifetime_spend[customer_id]
        stream = (expected.order_count[customer_id], int(spend * 100))
        if not live == recount == stream:
            differing.append((customer_id, live, recount, stream))
    documents: list[dict[str, Any]] = []
    if differing:  # what MongoDB holds for them, to tell a lost write from a doubled count
        documents = (
            await db["orders"]
            .find(
                {"customer_id": {"$in": [d[0] for d in differing[:3]]}},
                {"_id": 0, "order_no": 1, "status": 1, "contribution_reversed": 1, "version": 1},
            )
            .to_list(None)
        )
    assert differing == [], (
        f"{len(differing)} customers' figures differ from the recount "
        f"(customer, live, recount, stream): {differing[:5]}; their orders: {documents}"
    )
    assert new_but_returning == [], f"{len(new_but_returning)} returning customers tagged new"
    assert wrong_prior == [], f"{len(wrong_prior)} orders tagged with wrong prior counts"


async def assert_history_once_per_change(db: AsyncDatabase[dict[str, Any]]) -> None:
    """No tag added twice to one order (none of the generated orders loses a tag and regains
    it), so a doubled effect shows up here."""
    doubled = await db["tag_history"].aggregate(
        [
            {"$unwind": "$added"},
            {"$group": {"_id": {"o": "$order_no", "t": "$added.tag"}, "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
        ]
    )
    assert await doubled.to_list(None) == []


def retagged_names(record: OrderRecord, rules: RuleSet, max_tags: int = 20) -> set[str]:
    """The tag names a re-tag of the order under ``rules`` gives, computed with the engine
    alone: the independent expectation for a backfill or a diff."""
    facts = order_facts(record.order, record.figures, record.status)
    change = merge_tags(
        record.tags,
        decide(rules, facts),
        exclusive_families=rules.exclusive_families,
        max_tags=max_tags,
        at=record.order.created_at,
    )
    return {tag.name for tag in change.tags}

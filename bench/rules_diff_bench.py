"""The diff of a candidate rule set against stored orders (``ordertag ruleset diff``): orders
replayed per second, read from MongoDB in batches and evaluated through both rule sets.

    uv run python -m bench.rules_diff_bench [ORDERS]

Stores ORDERS tagged orders (default 20,000) in a database of its own, as the tagger stores
them (order, tags, the figures each was tagged with), replays them through the default rules and
a candidate (lower "high value" and "big customer" thresholds), prints the figures and drops the
database. ``pure_orders_per_s`` is the evaluation alone, on orders already in memory."""

import asyncio
import json
import sys
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

from bench.harness import isolated_settings, run_prefix
from bench.orders import order_payloads
from services.tagger.rule_changes import ReplayWindow, StoredOrders, diff_against_history
from services.tagger.rules.diff import ReplayOrder, RuleDiff, tags_after
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.rules.schema import RuleSet, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderRecord
from shared.models import Order
from shared.mongo import make_mongo_client

MAX_TAGS = 20


def candidate_of(active_text: str) -> RuleSet:
    """The default rules with lower "high value" (100,000 → 20,000) and "big customer"
    (50,000 → 10,000) thresholds: a change that moves a good share of the orders."""
    text = active_text.replace(
        "{fact: customer.spend_365d, gt: 100000}", "{fact: customer.spend_365d, gt: 20000}"
    ).replace("{fact: amount, gte: 50000}", "{fact: amount, gte: 10000}")
    assert text != active_text, "the default rules no longer have the thresholds this bench moves"
    return parse_rules(text)


def tagged_orders(count: int, active: RuleSet) -> list[ReplayOrder]:
    """Orders with the figures a tagger would have counted for each (in creation order) and the
    tags the active rules gave them."""
    prior: dict[str, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    replayed = []
    for payload in order_payloads(count, run_prefix()):
        order = Order.model_validate(payload)
        orders, spend = prior[order.customer.id]
        figures = FiguresSnapshot(
            prior_order_count=orders,
            prior_lifetime_spend=spend,
            spend_365d=spend + order.pricing.total,
        )
        prior[order.customer.id] = (orders + 1, spend + order.pricing.total)
        untagged = ReplayOrder(order, order.status, [], figures)
        replayed.append(
            ReplayOrder(order, order.status, tags_after(active, untagged, MAX_TAGS), figures)
        )
    return replayed


async def run(count: int) -> dict[str, Any]:
    active_text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    active, candidate = parse_rules(active_text), candidate_of(active_text)
    orders = tagged_orders(count, active)

    started = time.perf_counter()
    pure = RuleDiff()
    pure.compare(active, candidate, orders, MAX_TAGS)
    pure_s = time.perf_counter() - started

    settings = isolated_settings("rules-diff")
    mongo = make_mongo_client(settings)
    database = mongo[settings.mongo_database]
    try:
        documents = [
            OrderRecord(o.order, o.status, o.tags, o.figures, version=1).to_document()
            for o in orders
        ]
        for start in range(0, len(documents), 1000):
            await database["orders"].insert_many(documents[start : start + 1000])
        started = time.perf_counter()
        tally = await diff_against_history(
            StoredOrders(database), active, candidate, window=ReplayWindow(), max_tags=MAX_TAGS
        )
        seconds = time.perf_counter() - started
    finally:
        await mongo.drop_database(settings.mongo_database)
        await mongo.close()
    assert tally.orders_compared == count
    assert (tally.orders_changed, tally.report()) == (pure.orders_changed, pure.report())
    return {
        "orders": count,
        "orders_changed": tally.orders_changed,
        "seconds": round(seconds, 2),
        "orders_per_s": round(count / seconds),
        "pure_orders_per_s": round(count / pure_s),
        "tags": {
            row["tag"]: {"gained": row["gained"], "lost": row["lost"]}
            for row in tally.report()["tags"]
        },
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(asyncio.run(run(count)), indent=2, ensure_ascii=False))

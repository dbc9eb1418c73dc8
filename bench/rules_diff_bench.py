"""The diff of a candidate rule set against stored orders: orders replayed per second, read from
MongoDB in batches and evaluated through both rule sets.

    uv run python -m bench.rules_diff_bench [ORDERS] [ROUNDS]

Stores ORDERS tagged orders (default 20,000) in a database of its own, as the tagger stores
them (order, compact tags, the figures each was tagged with; the tagger's indexes), replays them
through the default rules and a candidate (lower "high value" and "big customer" thresholds),
ROUNDS times each way (default 3), prints each round and the median, and drops the database.

- ``pure``: the evaluation alone, on orders already in memory with their facts built;
- ``stream``: read and evaluate in one pass (``ordertag ruleset diff``);
- ``job``: the diff as the Tag API runs it, a job (``rule_diff_job.py``) from its start to its
  status ``done``, checkpoints included."""

import asyncio
import json
import statistics
import sys
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

from bench.harness import isolated_settings, run_prefix
from bench.orders import order_payloads
from services.tagger.jobs import DIFF_KIND, Jobs
from services.tagger.order_record import OrderRecord
from services.tagger.rule_changes import ReplayWindow, StoredOrders, diff_against_history
from services.tagger.rule_diff_job import DiffRequest, RuleDiffJobs
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.diff import ReplayOrder, RuleDiff, tags_after
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.rules.reasons import reason_templates
from services.tagger.rules.schema import RuleSet, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from shared.models import Order
from shared.mongo import make_mongo_client

MAX_TAGS = 20


def candidate_text_of(active_text: str) -> str:
    """The default rules with lower "high value" (100,000 → 20,000) and "big customer"
    (50,000 → 10,000) thresholds: a change that moves a good share of the orders."""
    text = active_text.replace(
        "{fact: customer.spend_365d, gt: 100000}", "{fact: customer.spend_365d, gt: 20000}"
    ).replace("{fact: amount, gte: 50000}", "{fact: amount, gte: 10000}")
    assert text != active_text, "the default rules no longer have the thresholds this bench moves"
    return text


def candidate_of(active_text: str) -> RuleSet:
    return parse_rules(candidate_text_of(active_text))


def tagged_orders(count: int, active: RuleSet) -> list[OrderRecord]:
    """Orders with the figures a tagger would have counted for each (in creation order) and the
    tags the active rules gave them, as the tagger stores them."""
    prior: dict[str, tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    records = []
    for payload in order_payloads(count, run_prefix()):
        order = Order.model_validate(payload)
        orders, spend = prior[order.customer.id]
        figures = FiguresSnapshot(
            prior_order_count=orders,
            prior_lifetime_spend=spend,
            spend_365d=spend + order.pricing.total,
        )
        prior[order.customer.id] = (orders + 1, spend + order.pricing.total)
        untagged = ReplayOrder.of(order, order.status, [], figures)
        tags = tags_after(active, untagged, MAX_TAGS)
        records.append(OrderRecord(order, order.status, tags, figures, version=1))
    return records


def replayed(records: list[OrderRecord]) -> list[ReplayOrder]:
    return [ReplayOrder.of(r.order, r.status, r.tags, r.figures) for r in records]


def rates(count: int, seconds: list[float]) -> dict[str, Any]:
    """Orders per second of each round and their median."""
    return {
        "rounds": [round(count / s) for s in seconds],
        "median": round(count / statistics.median(seconds)),
    }


async def diff_as_job(database: Any, active_text: str, candidate_text: str) -> RuleDiff:
    """The diff as the Tag API starts it and a jobs replica runs it, until it is done."""
    versions = RuleVersions(database)
    active = await versions.record(active_text, parse_rules(active_text), by="bench")
    candidate = await versions.record(
        candidate_text, parse_rules(candidate_text), by="bench", active=False
    )
    diffs = RuleDiffJobs(versions, StoredOrders(database), max_tags=MAX_TAGS)
    jobs = Jobs(database, None, runs={DIFF_KIND: diffs.run})
    job_id, _ = await diffs.start(jobs, DiffRequest(candidate, active, ReplayWindow()))
    try:
        # the status is in MongoDB, as the API reads it; a poll adds at most 20 ms to seconds
        while (job := await jobs.get(job_id)) is None or job["status"] == "running":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    finally:
        await jobs.stop()
    assert job["status"] == "done", job
    return RuleDiff.from_report(job["result"])


async def run(count: int, rounds: int = 3) -> dict[str, Any]:
    active_text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    candidate_text = candidate_text_of(active_text)
    active, candidate = parse_rules(active_text), parse_rules(candidate_text)
    records = tagged_orders(count, active)
    orders = replayed(records)

    pure_s = []
    for _ in range(rounds):
        started = time.perf_counter()
        pure = RuleDiff()
        pure.compare(active, candidate, orders, MAX_TAGS)
        pure_s.append(time.perf_counter() - started)

    settings = isolated_settings("rules-diff")
    mongo = make_mongo_client(settings)
    database = mongo[settings.mongo_database]
    stream_s, job_s = [], []
    try:
        await OrderStore(database).ensure_indexes()
        templates = reason_templates(active)  # compact tags, as the tagger stores them
        documents = [record.to_document(templates) for record in records]
        for start in range(0, len(documents), 1000):
            await database["orders"].insert_many(documents[start : start + 1000])
        for _ in range(rounds):  # alternating, so both see the same machine
            started = time.perf_counter()
            tally = await diff_against_history(
                StoredOrders(database), active, candidate, window=ReplayWindow(), max_tags=MAX_TAGS
            )
            stream_s.append(time.perf_counter() - started)
            assert (tally.orders_compared, tally.report()) == (count, pure.report())
            started = time.perf_counter()
            by_job = await diff_as_job(database, active_text, candidate_text)
            job_s.append(time.perf_counter() - started)
            assert by_job.report() == pure.report()
    finally:
        await mongo.drop_database(settings.mongo_database)
        await mongo.close()
    return {
        "orders": count,
        "orders_changed": pure.orders_changed,
        "pure_orders_per_s": rates(count, pure_s),
        "stream_orders_per_s": rates(count, stream_s),
        "job_orders_per_s": rates(count, job_s),
        "tags": {
            row["tag"]: {"gained": row["gained"], "lost": row["lost"]}
            for row in pure.report()["tags"]
        },
    }


TARGET_PER_S = 5_000  # issue #18, on 10,000 stored orders


def markdown(figures: dict[str, Any]) -> str:
    """The rule diff's section of benchmarks.md (``make bench``)."""
    rows = [
        f"| {label} | {' / '.join(f'{r:,}' for r in figures[key]['rounds'])} |"
        f" {figures[key]['median']:,} |"
        for label, key in (
            ("evaluation alone (in memory)", "pure_orders_per_s"),
            ("read and evaluate (`ordertag ruleset diff`)", "stream_orders_per_s"),
            ("diff job, start to done (Tag API, console)", "job_orders_per_s"),
        )
    ]
    verdict = "meets" if figures["job_orders_per_s"]["median"] >= TARGET_PER_S else "misses"
    return "\n".join(
        [
            "",
            "## Rule diff against stored orders",
            "",
            f"A candidate rule set (lower thresholds) against {figures['orders']:,} stored orders,"
            f" {figures['orders_changed']:,} of which would change (`bench/rules_diff_bench.py`)."
            f" The diff job {verdict} the {TARGET_PER_S:,} orders/s target (issue #18).",
            "",
            "| orders/s | rounds | median |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(json.dumps(asyncio.run(run(count, rounds)), indent=2, ensure_ascii=False))

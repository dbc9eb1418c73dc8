"""The independent check: Kafka, MongoDB and Redis read directly (aiokafka, pymongo, redis-py),
the webhook receivers' counts, and the ledger of ingest's answers; never through ordertag's own
adapters. Each check says what it found, with figures and a few examples."""

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.tagger.figure_keys import WINDOW_DAYS
from services.tagger.rules.schema import RuleSet
from shared.events import order_event_adapter
from shared.stored_history import first_change_at, with_first_change
from shared.stored_order import applied_event_ids, order_created_at
from tests.chaos.environment import Environment
from tests.chaos.receivers import Receiver
from tests.chaos.recompute import REVERSING, Expected, recompute
from tests.chaos.traffic import Ledger

EXAMPLES = 8


@dataclass
class Check:
    name: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


async def topic_partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions, asked of the broker (none when the topic does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [found] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if found["error_code"]:
        return []
    return [
        TopicPartition(topic, p["partition"])
        for p in sorted(found["partitions"], key=lambda p: p["partition"])
    ]


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of the topic, partition after partition, each in offset order."""
    partitions = await topic_partitions(bootstrap, topic)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: dict[int, list[Any]] = defaultdict(list)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                records[tp.partition].extend(r for r in batch if r.offset < ends[tp])
        return [r for p in sorted(records) for r in records[p]]
    finally:
        await consumer.stop()


async def run_checks(
    env: Environment,
    ledger: Ledger,
    receivers: list[Receiver],
    rules: RuleSet,
    routes: list[dict[str, Any]],
    max_tags: int,
) -> tuple[list[Check], dict[str, Any]]:
    settings = env.settings
    topics = settings.topics
    order_records = await read_topic(settings.kafka_bootstrap_servers, topics.orders)
    alert_records = await read_topic(settings.kafka_bootstrap_servers, topics.alerts)
    dead_records = await read_topic(settings.kafka_bootstrap_servers, topics.dead_letter)

    events, undecodable, seen = [], 0, set()
    for record in order_records:
        try:
            event = order_event_adapter.validate_json(record.value)
        except ValidationError:
            undecodable += 1
            continue
        if str(event.event_id) not in seen:  # a producer retry may write a record twice
            seen.add(str(event.event_id))
            events.append(event)
    expected = recompute(events, rules, routes, max_tags)

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    redis = Redis.from_url(settings.redis_url, socket_timeout=30)
    try:
        db = mongo[settings.mongo_database]
        stored = {
            d["order_no"]: d
            async for d in db["orders"].find(
                {},
                {
                    "_id": 0,
                    "order_no": 1,
                    "customer_id": 1,
                    "status": 1,
                    "tag_names": 1,
                    "order.pricing.total": 1,
                    "order.created_at": 1,
                    "created_at": 1,
                    "applied_events": 1,
                    "version": 1,
                    "tags_at": 1,
                    "first_at": 1,
                },
                batch_size=1000,
            )
        }
        entries: dict[str, list[dict[str, Any]]] = {order_no: [] for order_no in stored}
        async for d in db["tag_history"].find(
            {}, {"_id": 0, "order_no": 1, "event_id": 1}, batch_size=1000
        ):
            entries.setdefault(d["order_no"], []).append(d)
        history = [  # with the first changes the orders keep
            entry
            for order_no, kept in entries.items()
            for entry in with_first_change(
                kept,
                order_no,
                applied_event_ids(stored.get(order_no, {})),
                first_change_at(stored.get(order_no, {})),
            )
        ]
        alerts = [
            d
            async for d in db["alerts"].find(
                {},
                {"_id": 0, "alert_id": 1, "status": 1, "revision": 1, "deliveries": 1},
                batch_size=1000,
            )
        ]
        checks = [
            check_ingest_answers(ledger),
            check_accepted_on_kafka(ledger, seen, undecodable),
            check_orders_stored(ledger, stored, expected),
            check_tags(expected, stored),
            check_history(expected, history),
            await check_figures(redis, stored),
            check_alerts(expected, alerts, alert_records),
            check_deliveries(expected, receivers, alerts),
            Check(
                "nothing dead-lettered",
                not dead_records and not expected.unknown_status_changes,
                {
                    "dead_letters": len(dead_records),
                    "status_changes_before_their_order": len(expected.unknown_status_changes),
                },
            ),
        ]
    finally:
        await redis.aclose()
        await mongo.close()
    totals = {
        "events_on_kafka": len(events),
        "orders_in_mongodb": len(stored),
        "history_entries": len(history),
        "alerts_in_mongodb": len(alerts),
        "alerts_expected": len(expected.alerts),
        "alerts_on_topic": len(alert_records),
        "deliveries_received": sum(sum(r.delivered.values()) for r in receivers),
        "receiver_requests": sum(r.requests for r in receivers),
        "receiver_refused_500": sum(r.refused for r in receivers),
        "receiver_repeats_same_key": sum(r.repeats for r in receivers),
    }
    return checks, totals


def check_ingest_answers(ledger: Ledger) -> Check:
    """Nothing but 2xx, 4xx for bad input, 503/429 with Retry-After."""
    bad: Counter[str] = Counter()
    for (what, status, retry_after), count in ledger.answers.items():
        fine = (
            200 <= status < 300
            or (status in (503, 429) and retry_after)
            or (what == "invalid" and 400 <= status < 500)
            or (status == 409 and retry_after)  # the same order being accepted right now
        )
        if not fine:
            bad[f"{what} {status}{' with Retry-After' if retry_after else ''}"] += count
    return Check(
        "ingest answered only 2xx, 4xx for bad input, 503/429 with Retry-After",
        not bad and not ledger.unexpected and not ledger.given_up,
        {
            "answers": {
                f"{w} {s}{' +Retry-After' if r else ''}": n
                for (w, s, r), n in sorted(ledger.answers.items())
            },
            "not_allowed": dict(bad),
            "invalid_orders_sent": ledger.invalid_sent,
            "invalid_orders_refused_4xx": ledger.invalid_refused,
            "dropped_connections": len(ledger.transport_errors),
            "actions_given_up": len(ledger.given_up),
        },
        (ledger.unexpected + ledger.given_up)[:EXAMPLES],
    )


def check_accepted_on_kafka(ledger: Ledger, on_kafka: set[str], undecodable: int) -> Check:
    missing = [
        f"{kind} {no} event {eid}"
        for eid, (kind, no) in ledger.accepted_events.items()
        if eid not in on_kafka
    ]
    return Check(
        "every event ingest accepted is on Kafka",
        not missing and not undecodable,
        {
            "accepted_events": len(ledger.accepted_events),
            "missing": len(missing),
            "undecodable": undecodable,
        },
        missing[:EXAMPLES],
    )


def check_orders_stored(ledger: Ledger, stored: dict[str, Any], expected: Expected) -> Check:
    accepted = ledger.accepted_orders
    lost = sorted(no for no in accepted if no not in stored)
    wrong_status = sorted(
        f"{no}: stored {stored[no]['status']}, last accepted change {status}"
        for no, status in ledger.final_status.items()
        if no in stored and stored[no]["status"] != status
    )
    never_accepted = sorted(no for no in stored if no not in accepted)
    return Check(
        "every order ingest accepted is in MongoDB, in its last accepted status",
        not lost and not wrong_status,
        {
            "accepted": len(accepted),
            "stored": len(stored),
            "lost": len(lost),
            "wrong_status": len(wrong_status),
            "stored_never_acknowledged": len(never_accepted),
            "recomputed": len(expected.orders),
        },
        [f"lost {no}" for no in lost[:EXAMPLES]] + wrong_status[:EXAMPLES],
    )


def check_tags(expected: Expected, stored: dict[str, Any]) -> Check:
    differ = []
    kinds: Counter[str] = Counter()
    for no, want in expected.orders.items():
        found = stored.get(no)
        if found is None:
            continue
        have = set(found.get("tag_names", []))
        if have != want.tag_names:
            extra, lacking = sorted(have - want.tag_names), sorted(want.tag_names - have)
            differ.append(f"{no}: stored has {extra} lacks {lacking}")
            kinds.update(f"+{t}" for t in have - want.tag_names)
            kinds.update(f"-{t}" for t in want.tag_names - have)
    return Check(
        "every stored order has the tags a recomputation from its events gives",
        not differ,
        {
            "orders_compared": len(expected.orders),
            "differ": len(differ),
            "by_tag": dict(kinds.most_common(12)),
        },
        differ[:EXAMPLES],
    )


def check_history(expected: Expected, history: list[dict[str, Any]]) -> Check:
    entries: Counter[tuple[str, str]] = Counter((h["order_no"], h["event_id"]) for h in history)
    want = {(no, eid) for no, o in expected.orders.items() for eid in o.changes}
    duplicated = [f"{k}: {n} entries" for k, n in entries.items() if n > 1]
    missing = sorted(f"{no} event {eid}" for no, eid in want - set(entries))
    extra = sorted(f"{no} event {eid}" for no, eid in set(entries) - want)
    return Check(
        "exactly one history entry per tag change",
        not duplicated and not missing and not extra,
        {
            "expected": len(want),
            "stored": len(history),
            "duplicated": len(duplicated),
            "missing": len(missing),
            "unexpected": len(extra),
        },
        (duplicated + missing + extra)[:EXAMPLES],
    )


def _kept_days(by_day: Mapping[int, int], last: float | None) -> dict[int, int]:
    """The days with spend that the figures must still hold: those a window ending on the
    customer's newest order reaches, and a month more (``figures.lua`` drops older ones as
    later orders come, so whether an older day is still there depends on their order)."""
    newest = int(last // 86_400) if last is not None else 0
    return {d: c for d, c in by_day.items() if c and d > newest - WINDOW_DAYS - 31}


async def check_figures(redis: Redis, stored: dict[str, Any]) -> Check:
    """Every customer's figures in Redis equal a recount of their orders in MongoDB."""
    recount: dict[str, dict[str, Any]] = {}
    for document in stored.values():
        figures = recount.setdefault(
            document["customer_id"],
            {"count": 0, "spend": 0, "first": None, "last": None, "by_day": Counter()},
        )
        ts = order_created_at(document).timestamp()
        figures["first"] = ts if figures["first"] is None else min(figures["first"], ts)
        figures["last"] = ts if figures["last"] is None else max(figures["last"], ts)
        if document["status"] in {s.value for s in REVERSING}:
            continue
        cents = int(Decimal(document["order"]["pricing"]["total"]) * 100)
        figures["count"] += 1
        figures["spend"] += cents
        figures["by_day"][int(ts // 86_400)] += cents
    differ, over, under = [], 0, 0
    customers = sorted(recount)
    for start in range(0, len(customers), 500):
        chunk = customers[start : start + 500]
        pipe = redis.pipeline(transaction=False)
        for customer in chunk:
            pipe.hgetall(f"ot:{{{customer}}}:totals")
            pipe.hgetall(f"ot:{{{customer}}}:by-day")
        answers = await pipe.execute()
        for index, customer in enumerate(chunk):
            totals, by_day = answers[2 * index], answers[2 * index + 1]
            want = recount[customer]
            have_count = int(totals.get(b"count", 0))
            have = (
                have_count,
                int(totals.get(b"spend", 0)),
                _close(totals.get(b"first_at"), want["first"]),
                _close(totals.get(b"last_at"), want["last"]),
                _kept_days({int(d): int(c) for d, c in by_day.items()}, want["last"])
                == _kept_days(want["by_day"], want["last"]),
            )
            if have != (want["count"], want["spend"], True, True, True):
                over += have_count > want["count"]
                under += have_count < want["count"]
                differ.append(
                    f"{customer}: redis count {have[0]} spend {have[1]}, recount {want['count']} "
                    f"spend {want['spend']}; first/last/by-day match {have[2:]}"
                )
    return Check(
        "every customer's figures equal a recount from MongoDB",
        not differ,
        {
            "customers": len(recount),
            "differ": len(differ),
            "counted_too_many": over,
            "counted_too_few": under,
        },
        differ[:EXAMPLES],
    )


def _close(raw: bytes | None, value: float | None) -> bool:
    if raw is None or value is None:
        return raw is None and value is None
    return abs(float(raw) - value) < 1e-3


def check_alerts(expected: Expected, alerts: list[dict[str, Any]], on_topic: list[Any]) -> Check:
    """One alert per order and team where the recomputation raised one, open or resolved as the
    order's events leave it; its latest revision on the alerts topic. A revision may be there
    twice, the same record: a crash between Kafka's acknowledgement and MongoDB's record of it
    publishes it again (docs/notifier.md: consumers deduplicate on alert id and revision), and
    both copies tell the same: status, severity and kind."""
    want = expected.alerts
    want_status = expected.alert_status
    stored = Counter(a["alert_id"] for a in alerts)
    by_id = {a["alert_id"]: a for a in alerts}
    wrong_status = sorted(
        f"{a}: stored {by_id[a]['status']}, expected {status}"
        for a, status in want_status.items()
        if a in by_id and _open(by_id[a]["status"]) != _open(status)
    )
    records: dict[tuple[str, int], list[tuple[str, str, str]]] = defaultdict(list)
    for record in on_topic:
        value = json.loads(record.value)
        told = (value["status"], value["severity"], value["kind"])
        records[(value["alert_id"], value.get("revision", 1))].append(told)
    published = Counter(alert_id for alert_id, _ in records)
    latest: dict[str, int] = {}
    for alert_id, revision in records:
        latest[alert_id] = max(revision, latest.get(alert_id, 0))
    not_latest = sorted(
        f"{a}: revision {by_id[a].get('revision', 1)} stored, {latest.get(a, 0)} on the topic"
        for a in set(want) & set(by_id)
        if latest.get(a, 0) != by_id[a].get("revision", 1)
    )
    republished = sum(len(copies) > 1 for copies in records.values())
    differing = sorted(f"{a} revision {r}" for (a, r), c in records.items() if len(set(c)) > 1)
    return Check(
        "every alert due was raised, once per order and team, open or resolved as its order's"
        " events leave it (in MongoDB; its latest revision on the alerts topic)",
        set(stored) == set(want)
        and max(stored.values(), default=1) == 1
        and not wrong_status
        and set(published) == set(want)
        and not not_latest
        and not differing,
        {
            "expected": len(want),
            "stored": len(stored),
            "missing": len(set(want) - set(stored)),
            "unexpected": len(set(stored) - set(want)),
            "stored_twice": sum(n > 1 for n in stored.values()),
            "wrong_status": len(wrong_status),
            "resolved": sum(not _open(s) for s in want_status.values() if s),
            "on_topic_missing": len(set(want) - set(published)),
            "latest_revision_not_on_topic": len(not_latest),
            "revisions_republished_after_a_crash": republished,
            "revisions_differing_on_topic": len(differing),
            "by_kind": dict(Counter(a.rsplit(":", 1)[1] for a in want)),
        },
        [f"missing {a}" for a in sorted(set(want) - set(stored))[:EXAMPLES]]
        + [f"unexpected {a}" for a in sorted(set(stored) - set(want))[:EXAMPLES]]
        + wrong_status[:EXAMPLES]
        + [f"not on topic {a}" for a in sorted(set(want) - set(published))[:EXAMPLES]]
        + not_latest[:EXAMPLES]
        + [f"{d} on the topic twice, telling different things" for d in differing[:EXAMPLES]],
    )


def _open(status: str) -> bool:
    return status != "resolved"


def check_deliveries(
    expected: Expected, receivers: list[Receiver], alerts: list[dict[str, Any]]
) -> Check:
    """Each alert reached each of its channels once; or, when it resolved before a channel
    heard of it, its delivery there was skipped (docs/notifier.md): MongoDB says so, the
    alert is resolved and the channel never received it. Anything else is missing."""
    by_channel = {r.channel: r for r in receivers}
    stored = {a["alert_id"]: a for a in alerts}
    missing, duplicated, unexpected = [], [], []
    missing_states: Counter[str] = Counter()
    duplicate_deliveries = skipped = 0
    for alert_id, channels in expected.alerts.items():
        for channel in channels:
            count = by_channel[channel].delivered.get(alert_id, 0)
            if count == 0 and _skipped(stored.get(alert_id), channel):
                skipped += 1
            elif count == 0:
                state = _delivery_state(stored.get(alert_id), channel)
                missing_states[state] += 1
                missing.append(f"{alert_id} never reached {channel} (in MongoDB: {state})")
            elif count > 1:
                duplicated.append(f"{alert_id} reached {channel} {count} times")
                duplicate_deliveries += count - 1
    for receiver in receivers:
        for alert_id in receiver.delivered:
            if receiver.channel not in expected.alerts.get(alert_id, []):
                unexpected.append(f"{alert_id} reached {receiver.channel} unexpectedly")
    return Check(
        "each alert delivered exactly once to each of its channels (counted at the receivers),"
        " or skipped there because it resolved first",
        not missing and not duplicated and not unexpected,
        {
            "expected": sum(len(c) for c in expected.alerts.values()),
            "delivered": sum(len(c) for c in expected.alerts.values()) - skipped - len(missing),
            "skipped_resolved_first": skipped,
            "missing": len(missing),
            "missing_by_stored_state": dict(missing_states),
            "alerts_delivered_twice_or_more": len(duplicated),
            "duplicate_deliveries": duplicate_deliveries,
            "unexpected": len(unexpected),
        },
        (duplicated + missing + unexpected)[:EXAMPLES],
    )


def _delivery_state(alert: dict[str, Any] | None, channel: str) -> str:
    """What MongoDB says of the alert's delivery to ``channel``, to tell why it never came."""
    if alert is None:
        return "no alert"
    found = [d for d in alert.get("deliveries", []) if d["channel"] == channel]
    if not found:
        return f"no delivery, alert {alert.get('status')}"
    told = ", told" if found[0].get("told") else ""
    return f"{found[0]['status']}{told}, alert {alert.get('status')}"


def _skipped(alert: dict[str, Any] | None, channel: str) -> bool:
    """The alert resolved before ``channel`` was told of it, and its delivery there says so."""
    if alert is None or alert.get("status") != "resolved":
        return False
    return any(
        d["channel"] == channel and d["status"] == "skipped" and not d.get("told")
        for d in alert.get("deliveries", [])
    )

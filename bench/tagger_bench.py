"""Tagger throughput: the raw ``getmany`` ceiling, a naive per-message baseline, the real tagger,
and two tagger processes sharing a 6-partition topic."""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from bson import CodecOptions
from bson.raw_bson import RawBSONDocument
from faststream import AckPolicy
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import (
    Timer,
    cpu_seconds,
    env_for,
    isolated_settings,
    produce,
    rate,
    run_prefix,
    service,
    stack_pids,
)
from bench.orders import order_payloads
from services.tagger.store import OrderStore
from shared.events import OrderCreated
from shared.kafka import ensure_topics, make_broker
from shared.models import Order
from shared.mongo import SCAN_BATCH, make_mongo_client
from shared.redis import make_redis
from shared.settings import Settings

# the ``sitecustomize`` that counts a process's MongoDB commands
COUNTER_DIR = Path(__file__).parent / "command_count"


async def prefill(settings: Settings, count: int) -> None:
    payloads = order_payloads(count, run_prefix())
    await produce(settings, [OrderCreated(order=Order.model_validate(p)) for p in payloads])


async def consume_span(
    settings: Settings, topic: str, count: int, within: float, from_start: bool = False
) -> tuple[float, list[int]]:
    """Seconds that ``count`` records on ``topic`` span, and their broker timestamps (ms).

    The span runs from the first to the last record's broker timestamp (when a service produced
    them), or (``from_start``) from the moment this consumer's partitions are assigned until it
    has read them all (the raw ceiling)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    seen, first = 0, 0.0
    stamps: list[int] = []
    try:
        await ensure_topics(settings)
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        first = time.perf_counter()
        async with asyncio.timeout(within):
            while seen < count:
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                for records in batch.values():
                    stamps.extend(record.timestamp for record in records)
                    seen += len(records)
        finished = time.perf_counter()
    finally:
        await consumer.stop()
    if from_start:
        return finished - first, stamps
    return (max(stamps) - min(stamps)) / 1000, stamps


async def raw_ceiling(settings: Settings, count: int) -> dict[str, Any]:
    seconds, _ = await consume_span(settings, settings.topics.orders, count, 120, from_start=True)
    return {"orders": count, "seconds": round(seconds, 2), "orders_per_s": rate(count, seconds)}


async def naive_baseline(
    settings: Settings, count: int, ack_policy: AckPolicy = AckPolicy.ACK
) -> dict[str, Any]:
    """One FastStream handler call per message, awaiting one Redis and one MongoDB call each.

    ``AckPolicy.ACK`` commits each message once handled: at-least-once, the tagger's guarantee.
    ``AckPolicy.ACK_FIRST`` is FastStream's default, auto-commit: faster, at-most-once."""
    mongo = make_mongo_client(settings)
    orders = mongo[settings.mongo_database]["naive_orders"]
    redis = make_redis(settings)
    broker = make_broker(settings)
    done = asyncio.Event()
    times: list[float] = []

    @broker.subscriber(
        settings.topics.orders,
        group_id=f"naive-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        ack_policy=ack_policy,
    )
    async def handle(event: OrderCreated) -> None:
        await redis.incrbyfloat(f"naive:{event.customer_id}", float(event.order.pricing.total))
        await orders.update_one(
            {"order_no": event.order_no},
            {"$set": {"order": event.order.model_dump(mode="json")}},
            upsert=True,
        )
        times.append(time.perf_counter())
        if len(times) >= count:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), timeout=600)
    await redis.aclose()
    await mongo.drop_database(settings.mongo_database)
    await mongo.close()
    seconds = times[count - 1] - times[0]
    return {"orders": count, "seconds": round(seconds, 2), "orders_per_s": rate(count, seconds)}


async def floor_consumer(settings: Settings, count: int) -> dict[str, Any]:
    """The bare FastStream batch consumer (``bench/floor_consumer.py``) in a process of its own:
    decode and validate into the tagger's models, commit, nothing else."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.floor_consumer",
        settings.topics.orders,
        f"floor-{uuid.uuid4().hex[:8]}",
        str(count),
        env=env_for(settings),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the floor consumer failed (exit {process.returncode})")
    measured = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "orders": measured["orders"],
        "seconds": round(measured["seconds"], 2),
        "orders_per_s": rate(measured["orders"], measured["seconds"]),
        "cpu_us_per_order": round(measured["cpu_seconds"] / measured["orders"] * 1e6, 1),
    }


async def stored_size(database: AsyncDatabase[dict[str, Any]], orders: int) -> dict[str, Any]:
    """What the tagger wrote per order: BSON bytes and documents of the orders and the tag
    history as stored (what a MongoDB replica receives and keeps), divided by orders."""
    raw = CodecOptions(document_class=RawBSONDocument)
    sizes: dict[str, tuple[int, int]] = {}
    for name in ("orders", "tag_history"):
        collection = database.get_collection(name, codec_options=raw)
        documents = total = 0
        async for document in collection.find({}, batch_size=SCAN_BATCH):
            documents += 1
            total += len(cast(RawBSONDocument, document).raw)
        sizes[name] = (documents, total)
    return {
        "bytes_per_order": round(sum(b for _, b in sizes.values()) / orders, 1),
        "documents_per_order": round(sum(d for d, _ in sizes.values()) / orders, 2),
        "order_bytes": round(sizes["orders"][1] / max(sizes["orders"][0], 1), 1),
        "history_bytes_per_order": round(sizes["tag_history"][1] / orders, 1),
        "history_entries_per_order": round(sizes["tag_history"][0] / orders, 2),
    }


async def real_tagger(
    settings: Settings, count: int, processes: int, *, store_rounds: int = 0
) -> dict[str, Any]:
    # a database, tagged topic and group of its own: a run reads the orders topic from its
    # start and must count only the orders it tagged itself
    run = uuid.uuid4().hex[:8]
    group = f"tagger-{run}"
    target = settings.model_copy(
        update={"mongo_database": f"{settings.mongo_database}_{processes}_{run}"}
    )
    topics = target.topics.model_copy(
        update={"tagged": f"{target.topics.tagged}.{processes}.{run}"}
    )
    target = target.model_copy(update={"topics": topics})
    counted_in = _command_files(run, processes)
    urls = []
    async with AsyncExitStack() as taggers:
        pids = stack_pids()
        for index in range(processes):
            url, process = await taggers.enter_async_context(
                service(
                    "tagger",
                    target,
                    "ORDERTAG_TAGGER_PORT",
                    ORDERTAG_TAGGER_GROUP_ID=group,
                    **_counting_env(counted_in, index),
                )
            )
            pids[f"tagger {index + 1}"] = process.pid
            urls.append(url)
        # CPU per order of each process, over the orders tagged after this moment (the taggers
        # start on the topic at once; their start-up is left out this way)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        mark_ms = time.time() * 1000
        seconds, stamps = await consume_span(target, topics.tagged, count, within=600)
        load_average = os.getloadavg()[0]  # the machine's, as the run ends
        counted = sum(1 for stamp in stamps if stamp >= mark_ms)
        cpu_us_per_order = {
            name: round((cpu_seconds(pid) - cpu_before[name]) / counted * 1e6) if counted else None
            for name, pid in pids.items()
        }
        batches = sum([await _batches(url) for url in urls]) if counted_in else 0
    mongo = make_mongo_client(target)
    try:
        database = mongo[target.mongo_database]
        result = {
            "orders": count,
            "processes": processes,
            "seconds": round(seconds, 2),
            "orders_per_s": rate(count, seconds),
            "orders_tagged_twice": await _tagged_twice(database),
            "cpu_us_per_order": cpu_us_per_order,
            "load_average": round(load_average, 1),
            "stored": await stored_size(database, count),
        }
        if counted_in:
            result["commands"] = _commands(counted_in, batches, count)
        if store_rounds:
            result["store_ceiling"] = await _store_ceiling(mongo, database, store_rounds)
        await mongo.drop_database(target.mongo_database)
    finally:
        await mongo.close()
    return result


def _command_files(run: str, processes: int) -> list[Path]:
    """Where each tagger process writes the MongoDB commands it sent, when the run counts them
    (``ORDERTAG_BENCH_COMMANDS=1``): none otherwise (counting costs the tagger a little CPU)."""
    if os.environ.get("ORDERTAG_BENCH_COMMANDS") != "1":
        return []
    folder = Path(tempfile.gettempdir())
    return [folder / f"ordertag-commands-{run}-{index}.json" for index in range(processes)]


def _counting_env(files: list[Path], index: int) -> dict[str, str]:
    if not files:
        return {}
    return {"PYTHONPATH": str(COUNTER_DIR), "ORDERTAG_BENCH_COMMANDS": str(files[index])}


async def _batches(url: str) -> int:
    """Batches the tagger handled (its batch-size histogram's count)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics/")).text
    for line in text.splitlines():
        if line.startswith("ordertag_tagger_batch_size_count"):
            return int(float(line.split()[-1]))
    return 0


def _commands(files: list[Path], batches: int, orders: int) -> dict[str, Any]:
    """Every command the tagger processes sent (start-up and idle ones included), by command
    and collection: per batch and per 1,000 orders."""
    counts: Counter[str] = Counter()
    for path in files:
        counts.update(json.loads(path.read_text()))
        path.unlink()
    return {
        "batches": batches,
        "per_batch": {k: round(n / max(batches, 1), 2) for k, n in sorted(counts.items())},
        "per_1000_orders": round(sum(counts.values()) / orders * 1000, 1),
    }


async def _tagged_twice(database: AsyncDatabase[dict[str, Any]]) -> int:
    """Orders that an event was applied to twice (a second, non-idempotent application: two
    history entries of one event; an order's first entry names no added tags, so the entries
    are counted, not their tags)."""
    cursor = await database["tag_history"].aggregate(
        [
            {"$group": {"_id": {"o": "$order_no", "e": "$event_id"}, "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
        ]
    )
    return len(await cursor.to_list(None))


async def _store_ceiling(
    mongo: AsyncMongoClient[dict[str, Any]], tagged: AsyncDatabase[dict[str, Any]], rounds: int
) -> dict[str, Any]:
    """What the MongoDB server alone sustains for the tagger's writes: the very documents the
    tagger stored (order and history), written again into an empty database with the same
    indexes, 500 orders a bulk write, orders and history concurrently, as the tagger does,
    with no rule work, Kafka or Redis. Several rounds, each into a fresh database; the median
    round is the figure (one round drifts with whatever else the machine does). The server's
    CPU per order is measured over the writes alone."""
    orders = await tagged["orders"].find({}, {"_id": 0}, batch_size=SCAN_BATCH).to_list(None)
    history = await tagged["tag_history"].find({}, {"_id": 0}, batch_size=SCAN_BATCH).to_list(None)
    history_of: dict[str, list[dict[str, Any]]] = {}
    for entry in history:
        history_of.setdefault(entry["order_no"], []).append(entry)
    server = stack_pids().get("mongo")
    seconds, server_cpu = [], []
    for round_no in range(rounds):
        name = f"{tagged.name}_store{round_no}"
        store = OrderStore(mongo[name])
        await store.ensure_indexes()
        cpu_before = cpu_seconds(server) if server else 0.0
        with Timer() as timer:
            for start in range(0, len(orders), 500):
                chunk = orders[start : start + 500]
                entries = [e for o in chunk for e in history_of.get(o["order_no"], [])]
                writes = [store.orders.insert_many(chunk, ordered=False)]
                if entries:
                    writes.append(store.tag_history.insert_many(entries, ordered=False))
                await asyncio.gather(*writes)
        if server:
            server_cpu.append(round((cpu_seconds(server) - cpu_before) / len(orders) * 1e6))
        await mongo.drop_database(name)
        seconds.append(timer.seconds)
    median = statistics.median(seconds)
    return {
        "orders": len(orders),
        "history_entries": len(history),
        "rounds": rounds,
        "seconds": round(median, 2),
        "orders_per_s": rate(len(orders), median),
        "rounds_orders_per_s": [rate(len(orders), s) for s in seconds],
        "rounds_mongo_cpu_us_per_order": server_cpu,
    }


async def warm_store(count: int) -> None:
    """Run the tagger and the store-alone writes once, unmeasured, on orders of their own: a
    MongoDB-wire server fresh from start-up (a cold JVM) spends about twice the CPU per order
    on its first run, which would count against whichever figure came first."""
    settings = isolated_settings("tagger-warm")
    await prefill(settings, count)
    await real_tagger(settings, count, processes=1, store_rounds=1)


async def run(scale: float = 1.0, *, two_processes: bool = True, rounds: int = 3) -> dict[str, Any]:
    count = int(20_000 * scale)
    naive_count = int(3_000 * scale)
    settings = isolated_settings("tagger")
    await prefill(settings, count)
    raw = await raw_ceiling(settings, count)
    naive = await naive_baseline(settings, naive_count)
    naive_auto = await naive_baseline(settings, naive_count, AckPolicy.ACK_FIRST)
    floor = await floor_consumer(settings, count)
    await warm_store(max(count // 5, 500))
    # each round: the tagger over the whole topic (a group of its own), then the store alone
    # writing what it stored; the ratio is taken within a round, as both share its conditions
    measured = [
        await real_tagger(settings, count, processes=1, store_rounds=1) for _ in range(rounds)
    ]
    round_rows = [_round_row(tagged) for tagged in measured]
    ratio = statistics.median(row["tagger_vs_store"] for row in round_rows)
    # the detailed figures are the round whose ratio is the median one
    middle = min(range(rounds), key=lambda i: abs(round_rows[i]["tagger_vs_store"] - ratio))
    one = measured[middle]
    two = await real_tagger(settings, count, processes=2) if two_processes else None
    store = one.pop("store_ceiling")
    for other in measured:
        other.pop("store_ceiling", None)
    return {
        "raw_getmany": raw,
        "naive_per_message": naive,
        "naive_auto_commit": naive_auto,
        "floor_batch_consumer": floor,
        "tagger_1_process": one,
        "tagger_2_processes": two,
        "store_ceiling": store,
        "rounds": round_rows,
        "tagger_vs_naive": round(one["orders_per_s"] / naive["orders_per_s"], 2),
        "tagger_vs_naive_auto": round(one["orders_per_s"] / naive_auto["orders_per_s"], 2),
        "tagger_vs_raw": round(one["orders_per_s"] / raw["orders_per_s"], 3),
        "two_vs_one": round(two["orders_per_s"] / one["orders_per_s"], 2) if two else None,
        "store_vs_naive": round(store["orders_per_s"] / naive["orders_per_s"], 2),
        "tagger_vs_store": round(ratio, 2),
        "tagger_cpu_vs_floor": round(
            one["cpu_us_per_order"]["tagger 1"] / floor["cpu_us_per_order"], 2
        ),
    }


def _round_row(tagged: dict[str, Any]) -> dict[str, Any]:
    """One round's figures: the tagger and the store alone, each with the server's CPU."""
    store = tagged["store_ceiling"]
    cpu = tagged["cpu_us_per_order"]
    return {
        "tagger_orders_per_s": tagged["orders_per_s"],
        "store_orders_per_s": store["orders_per_s"],
        "tagger_vs_store": round(tagged["orders_per_s"] / store["orders_per_s"], 2),
        "tagger_cpu_us_per_order": cpu.get("tagger 1"),
        "mongo_cpu_us_per_order_tagger": cpu.get("mongo"),
        "mongo_cpu_us_per_order_store": (store["rounds_mongo_cpu_us_per_order"] or [None])[0],
        "load_average": tagged["load_average"],
    }

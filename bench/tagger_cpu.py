"""The tagger's own CPU per order next to the floor's, in one process, same events, same run.

The floor is what any consumer of these events must spend: decoding and validating each
record into the same pydantic models (``decode_records``, as ``bench/floor_consumer.py``
does). The tagger's pipeline is the consumer's batch handler on the real code path: decode,
the customer figures (the real ``CustomerFigures`` on the stack's Redis: its script calls are
the tagger's work to build and parse), the rules, the tag merge, the stored documents and
their BSON (the real ``OrderStore`` on a database that encodes every write as PyMongo would
and sends nothing), the tagged events' JSON (the real ``TaggerOutput`` on a producer that
takes the bytes and acknowledges at once). MongoDB's and Kafka's round trips are left out:
their servers' CPU is not the tagger's, and waiting costs the tagger nothing.

Each round runs fresh orders batch by batch, the floor's decoding and then the handler on each
batch in turn (a change of the machine's load falls on both alike); it prints both, the ratio
and the load average, then the medians:

    python -m bench.tagger_cpu [--orders 5000] [--rounds 3] [--profile FILE]

``--profile`` writes a cProfile of one more pipeline round (``python -m pstats FILE``).
"""

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import statistics
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import bson
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord

from bench.harness import run_prefix
from bench.orders import order_payloads
from services.tagger.consumer import handle_batch
from services.tagger.dead_letters import Record, decode_records
from services.tagger.figures import CustomerFigures
from services.tagger.publishing import TaggerOutput
from services.tagger.rules.book import RuleBook
from services.tagger.rules.reasons import reason_templates
from services.tagger.settings import TaggerSettings
from services.tagger.store import OrderStore
from services.tagger.tagging import TaggingService
from shared.events import OrderCreated
from shared.gc_tuning import cycles_collected_after
from shared.kafka import SAFE_PRODUCER
from shared.models import Order
from shared.redis import make_redis

TOPIC = "bench-tagger-cpu"


class _Cursor:
    """An empty query answer: every order of the run is new to the store."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        raise StopAsyncIteration

    async def to_list(self, _: int | None = None) -> list[dict[str, Any]]:
        return []


class EncodingCollection:
    """A collection whose writes are BSON-encoded, as PyMongo encodes them, and dropped."""

    def __init__(self) -> None:
        self.bytes_written = 0

    def find(self, *_: Any, **__: Any) -> _Cursor:
        return _Cursor()

    async def bulk_write(self, requests: Iterable[Any], ordered: bool = True) -> None:
        for request in requests:
            for part in ("_filter", "_doc"):
                document = getattr(request, part, None)
                if document is not None:
                    self.bytes_written += len(bson.encode(document))

    async def insert_many(self, documents: Iterable[Any], ordered: bool = True) -> None:
        for document in documents:
            self.bytes_written += len(bson.encode(document))


class EncodingDatabase:
    def __init__(self) -> None:
        self._collections: dict[str, EncodingCollection] = {}

    def __getitem__(self, name: str) -> EncodingCollection:
        return self._collections.setdefault(name, EncodingCollection())


class AcknowledgingProducer:
    """Takes each record (one by one, or batched as ``shared.kafka.send_batched`` sends) and
    acknowledges it at once. Batches are aiokafka's own builders, so encoding the records is
    charged to the tagger as on a real producer."""

    PARTITIONS = frozenset(range(6))

    def __init__(self) -> None:
        self.bytes_sent = 0

    async def send(self, topic: str, value: bytes, **_: Any) -> "asyncio.Future[None]":
        self.bytes_sent += len(value)
        return _acknowledged()

    async def partitions_for(self, topic: str) -> frozenset[int]:
        return self.PARTITIONS

    def create_batch(self) -> "CountingBatch":
        return CountingBatch(SAFE_PRODUCER["max_batch_size"], compression_type=0)

    async def send_batch(
        self, batch: "CountingBatch", topic: str, *, partition: int
    ) -> "asyncio.Future[None]":
        self.bytes_sent += batch.value_bytes
        batch._build()  # what the sender does before the request goes out
        return _acknowledged()


class CountingBatch(BatchBuilder):  # type: ignore[misc]
    """aiokafka's batch, counting the values' bytes (the tagged events' JSON)."""

    value_bytes = 0

    def append(self, *, key: Any, value: Any, timestamp: Any, headers: Any = None) -> Any:
        self.value_bytes += len(value)
        return super().append(key=key, value=value, timestamp=timestamp, headers=headers)


def _acknowledged() -> "asyncio.Future[None]":
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def records_of(count: int, batch: int) -> list[tuple[Record, ...]]:
    """Fresh orders of their own (new order numbers and customers), as consumed records."""
    events = [
        OrderCreated(order=Order.model_validate(p)) for p in order_payloads(count, run_prefix())
    ]
    now_ms = int(time.time() * 1000)
    records = [
        ConsumerRecord(
            topic=TOPIC,
            partition=0,
            offset=offset,
            timestamp=now_ms,
            timestamp_type=0,
            key=event.customer_id.encode(),
            value=(value := event.model_dump_json().encode()),
            checksum=None,
            serialized_key_size=len(event.customer_id),
            serialized_value_size=len(value),
            headers=[],
        )
        for offset, event in enumerate(events)
    ]
    return [tuple(records[i : i + batch]) for i in range(0, len(records), batch)]


class Pipeline:
    def __init__(self, settings: TaggerSettings) -> None:
        self.settings = settings
        self.rules = RuleBook(settings.tagger_rules_file)
        self.redis = make_redis(settings)
        self.figures = CustomerFigures(self.redis)
        self.database = EncodingDatabase()
        # documents as the local stack's server takes them (with ``tag_keys``), as in the
        # tagger process the target-2 figure is measured on; nothing to ask a server
        store = OrderStore(
            self.database,  # type: ignore[arg-type]
            lambda: reason_templates(self.rules.current),
            unique_indexes_only=True,
        )
        self.tagging = TaggingService(
            self.rules,
            self.figures,
            store,
            max_tags=settings.tagger_max_tags_per_order,
            lanes=settings.tagger_lanes,
        )
        self.producer = AcknowledgingProducer()
        self.output = TaggerOutput(self.producer, "tagged", "dead")
        self.orders = 0

    async def run(self, batches: list[tuple[Record, ...]]) -> tuple[float, float]:
        """CPU µs per order of the floor (decoding and validating each batch) and of the
        consumer's batch handler, batch by batch over the same records in turn, so a change
        in the machine's load falls on both alike."""
        floor = tagger = 0.0
        orders = 0
        for batch in batches:
            # young objects left from the batch before collected here, untimed: else the
            # collection the tagger's last batch made due falls in the floor's decoding
            gc.collect(0)
            started = time.process_time()
            with cycles_collected_after():  # as the tagger decodes: no collection inside
                decoded, dead = decode_records(batch)
            decoded_at = time.process_time()
            handled = await handle_batch(batch, TOPIC, self.tagging, self.output)
            floor += decoded_at - started
            tagger += time.process_time() - decoded_at
            tagged = len(handled.tagged_orders)
            assert len(decoded) + len(dead) == tagged == len(batch), "each order tagged once"
            orders += len(batch)
        self.orders += orders
        return floor / orders * 1e6, tagger / orders * 1e6


# The figures start from nothing (``reset``): in a Redis database of their own, not the one the
# stack's services (a running demo) keep their customers' figures in.
SCRATCH_REDIS_DATABASE = 15


@contextlib.contextmanager
def heap_set_aside() -> Iterator[None]:
    """What the process holds before the rounds is set aside from the cycle collector, as a
    service's start does (``shared.gc_tuning.tune_gc``, which also sets its thresholds): run
    from a test, after a thousand others, a full collection of that heap fell in a 300-order
    round's decoding and made the floor 800 µs an order instead of 15."""
    already = gc.get_freeze_count() > 0  # ``python -m bench`` tuned it at its start
    gc.collect()
    gc.freeze()  # what the benches before made too: a full collection would traverse it
    try:
        yield
    finally:
        if not already:
            gc.unfreeze()


def scratch_redis_url(url: str) -> str:
    """``url`` with the scratch database number in place of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{SCRATCH_REDIS_DATABASE}"))


async def measure(orders: int, rounds: int, profile: str | None) -> dict[str, Any]:
    stack = TaggerSettings()
    if stack.redis_cluster:  # a cluster has one database only: its figures would be wiped
        raise SystemExit("bench.tagger_cpu needs a one-node Redis (the local stack's)")
    settings = stack.model_copy(update={"redis_url": scratch_redis_url(stack.redis_url)})
    pipeline = Pipeline(settings)
    await pipeline.figures.reset()
    batch = settings.tagger_batch_max_records
    with heap_set_aside():
        try:
            await pipeline.run(records_of(min(orders, 1000), batch))  # warm-up: imports, caches
            figures: list[dict[str, float]] = []
            for index in range(rounds):
                floor, tagger = await pipeline.run(records_of(orders, batch))
                load = os.getloadavg()[0]
                figures.append(
                    {"floor_us": floor, "tagger_us": tagger, "ratio": tagger / floor, "load": load}
                )
                print(
                    f"round {index + 1}: tagger {tagger:.1f} µs/order, floor {floor:.1f} µs/order,"
                    f" ratio {tagger / floor:.2f}, load {load:.1f}",
                    flush=True,
                )
            if profile:
                batches = records_of(orders, batch)
                profiler = cProfile.Profile()
                profiler.enable()
                for records in batches:
                    await handle_batch(records, TOPIC, pipeline.tagging, pipeline.output)
                profiler.disable()
                profiler.dump_stats(profile)
                pipeline.orders += orders
        finally:
            await pipeline.redis.aclose()
    summary = {
        key: round(statistics.median(f[key] for f in figures), 2)
        for key in ("tagger_us", "floor_us", "ratio", "load")
    }
    stored = sum(c.bytes_written for c in pipeline.database._collections.values())
    total = pipeline.orders
    summary["stored_bytes_per_order"] = round(stored / total, 1)
    summary["tagged_json_bytes_per_order"] = round(pipeline.producer.bytes_sent / total, 1)
    return {"orders": orders, "rounds": figures, "median": summary}


async def run(scale: float = 1.0) -> dict[str, Any]:
    """``make bench``'s entry: medians of 3 rounds of 5,000 orders (at scale 1)."""
    return await measure(max(1_000, int(5_000 * scale)), 3, None)


def markdown(figures: dict[str, Any]) -> str:
    """The section of benchmarks.md: every round, the medians, the target."""
    median = figures["median"]
    rows = [
        f"| {index} | {r['tagger_us']:.1f} | {r['floor_us']:.1f} | {r['ratio']:.2f}"
        f" | {r['load']:.1f} |"
        for index, r in enumerate(figures["rounds"], start=1)
    ]
    return "\n".join(
        [
            "",
            "## Tagger's own CPU per order vs the floor (issue #14, target 2)",
            "",
            f"`bench/tagger_cpu.py`, in one process, {figures['orders']:,} fresh orders a round,"
            " batch by batch: the floor's decoding and validation of each batch, then the"
            " consumer's batch handler on the same records (figures on Redis; documents"
            " BSON-encoded as PyMongo would, not sent; tagged events serialised, not sent)."
            " Target: the tagger ≤ 3× the floor.",
            "",
            "| round | tagger µs/order | floor µs/order | ratio | load average |",
            "|---:|---:|---:|---:|---:|",
            *rows,
            f"| median | {median['tagger_us']:.1f} | {median['floor_us']:.1f} |"
            f" **{median['ratio']:.2f}** | {median['load']:.1f} |",
            "",
        ]
    )


if __name__ == "__main__":
    from shared.gc_tuning import tune_gc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of one more pipeline round here")
    arguments = parser.parse_args()
    tune_gc()  # the services' GC settings
    result = asyncio.run(measure(arguments.orders, arguments.rounds, arguments.profile))
    print(result["median"])

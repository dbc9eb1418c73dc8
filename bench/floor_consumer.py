"""The floor of any tagger's CPU per order: a bare FastStream batch consumer that decodes and
validates the same order events into the same pydantic models, commits each batch after
handling it, and does nothing else. Run as its own process, so its CPU is measured as the
tagger's is:

    python -m bench.floor_consumer TOPIC GROUP COUNT

It prints one JSON line when it has read COUNT events: the seconds and the CPU seconds from
its first batch to its last."""

import asyncio
import json
import sys
import time

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage

from services.tagger.dead_letters import decode_records
from services.tagger.settings import TaggerSettings
from shared.kafka import left_undecoded, make_broker


async def consume(topic: str, group: str, count: int) -> dict[str, float]:
    settings = TaggerSettings()
    broker = make_broker(settings)
    done = asyncio.Event()
    seen = 0
    started_wall = started_cpu = 0.0

    @broker.subscriber(
        topic,
        group_id=group,
        batch=True,
        max_records=settings.tagger_batch_max_records,
        batch_timeout_ms=settings.tagger_batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=left_undecoded,
    )
    async def on_order_events(message: KafkaMessage) -> None:
        nonlocal seen, started_wall, started_cpu
        if not seen:
            started_wall, started_cpu = time.perf_counter(), time.process_time()
        decoded, dead = decode_records(message.raw_message)
        seen += len(decoded) + len(dead)
        if seen >= count:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), timeout=600)
        seconds = time.perf_counter() - started_wall
        cpu = time.process_time() - started_cpu
    return {"orders": seen, "seconds": seconds, "cpu_seconds": cpu}


if __name__ == "__main__":
    from shared.gc_tuning import tune_gc

    tune_gc()  # the services' GC settings, as the tagger runs under them
    topic, group, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(consume(topic, group, count))), flush=True)

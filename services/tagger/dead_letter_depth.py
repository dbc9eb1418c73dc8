"""How many records wait in the dead-letter topic, for ``ordertag_dead_letter_records``.

Run by the jobs role (one per deployment is enough; each replica reports the same figure). A
consumer without a group reads the offsets only: it commits nothing and joins no rebalance."""

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.tagger import metrics
from shared.kafka import connection_options
from shared.settings import Settings

log = structlog.get_logger("tagger")
DEPTH_EVERY_S = 30.0
START_GRACE_S = 2.0


async def start_whole(consumer: AIOKafkaConsumer, grace_s: float = START_GRACE_S) -> None:
    """``consumer.start()``, which a cancellation (the process stopping) does not cut short:
    aiokafka leaves the bootstrap connection of a start cancelled halfway open, where no
    ``stop()`` can close it. The start gets ``grace_s`` to end before the cancellation goes on."""
    starting = asyncio.ensure_future(consumer.start())
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        await asyncio.wait({starting}, timeout=grace_s)
        if not starting.done():
            starting.cancel()
        elif not starting.cancelled():
            starting.exception()  # a failed start: stopping all the same, nothing to report
        raise


async def dead_letter_depth(consumer: AIOKafkaConsumer, topic: str) -> int:
    """Records in ``topic`` now: per partition, the end offset minus the first retained one."""
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not partitions:
        return 0
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    return sum(max(ends[tp] - starts[tp], 0) for tp in partitions)


async def watch_dead_letter_depth(settings: Settings, every_s: float = DEPTH_EVERY_S) -> None:
    """Set the gauge every ``every_s``; with Kafka away, keep the last figure and try again."""
    topic = settings.topics.dead_letter
    while True:
        consumer = AIOKafkaConsumer(**connection_options(settings), enable_auto_commit=False)
        try:
            await start_whole(consumer)
            while True:
                await consumer.topics()  # refresh metadata: partitions_for_topic reads a cache
                metrics.DEAD_LETTER_RECORDS.set(await dead_letter_depth(consumer, topic))
                await asyncio.sleep(every_s)
        except (KafkaError, OSError, TimeoutError) as error:
            log.warning("dead_letter_depth_unavailable", error=repr(error)[:200])
        finally:
            await consumer.stop()
        await asyncio.sleep(every_s)

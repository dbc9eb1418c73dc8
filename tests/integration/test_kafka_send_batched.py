"""``shared.kafka.send_batched`` (ingest's publishing): every record lands where ``send()`` would
put its key, with its headers and a creation time, in order per key, however many batches a
partition needs. On the real local Kafka."""

import time
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import (
    JSON_HEADERS,
    connection_options,
    ensure_topics,
    make_producer,
    send_batched,
)
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_records_sent_in_batches_land_as_sent_one_by_one(settings: Settings) -> None:
    await ensure_topics(settings)
    topic = settings.topics.orders
    producer = make_producer(settings)
    await producer.start()
    try:
        keys = [f"customer-{n % 37}".encode() for n in range(1200)]
        # ~1 KB values: partitions of ~200 records need more than one 256 KiB batch
        records = [
            (
                key,
                f'{{"n": {n}, "pad": "{"x" * 1000}"}}'.encode(),
                [*JSON_HEADERS, ("n", b"%d" % n)],
            )
            for n, key in enumerate(keys)
        ]
        before_ms = int(time.time() * 1000)
        futures = await send_batched(producer, topic, records)
        batched = [(await future).partition for future in futures]
        distinct = sorted(set(keys))
        one_by_one = [
            (await (await producer.send(topic, b"{}", key=key))).partition for key in distinct
        ]
    finally:
        await producer.stop()

    expected = dict(zip(distinct, one_by_one, strict=True))
    assert batched == [expected[key] for key in keys]
    assert len(set(futures)) > len(set(batched))  # some partition took several batches

    consumer = AIOKafkaConsumer(**connection_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(set(batched))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        received: dict[bytes, list[int]] = defaultdict(list)
        seen = 0
        while seen < len(records):
            for batch in (await consumer.getmany(timeout_ms=2000)).values():
                for record in batch:
                    if record.value == b"{}":
                        continue
                    seen += 1
                    headers = dict(record.headers)
                    assert headers["content-type"] == b"application/json"
                    assert record.timestamp >= before_ms
                    assert record.key is not None
                    received[record.key].append(int(headers["n"]))
    finally:
        await consumer.stop()
    for key, numbers in received.items():  # each customer's records in the order sent
        assert numbers == [n for n, k in enumerate(keys) if k == key]

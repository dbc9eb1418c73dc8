"""Batches sent per partition must go where aiokafka's ``send()`` (and the Java client) would put
each key, or one customer's events could be split across partitions and lose their order."""

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.kafka import murmur2, partition_for


def _keys() -> list[bytes]:
    rng = random.Random(14)
    keys = [b"", b"a", b"ab", b"abc", b"abcd", "客户-01".encode(), b"\xff" * 9, b"\x00" * 7]
    keys += [rng.randbytes(rng.randrange(0, 80)) for _ in range(5_000)]
    keys += [f"C-{n}".encode() for n in range(2_000)]
    return keys


def test_murmur2_is_the_one_kafka_clients_use() -> None:
    for key in _keys():
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_a_key_goes_to_the_partition_send_would_choose() -> None:
    chooser = DefaultPartitioner()
    for count in (1, 3, 6, 7, 64):
        partitions = list(range(count))
        for key in _keys():
            assert partition_for(key, partitions) == chooser(key, partitions, partitions)

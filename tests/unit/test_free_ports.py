"""Ports handed to the servers a test or bench starts: below the kernel's ephemeral range, where
no outgoing connection can take them before the server binds, never the same twice."""

import socket

from bench.harness import EPHEMERAL_PORTS_START, free_port_block


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_redis_cluster_block_has_its_bus_ports_free_and_below_the_ephemeral_range() -> None:
    for _ in range(200):  # the base is drawn at random: many draws, each checked
        base = free_port_block(3, and_at_offset=10_000)
        bus = range(base + 10_000, base + 10_003)
        assert bus[-1] < EPHEMERAL_PORTS_START
        assert all(_bindable(port) for port in (*range(base, base + 3), *bus))


def test_blocks_are_never_handed_out_twice() -> None:
    blocks = [free_port_block(2, and_at_offset=10_000) for _ in range(50)]
    ports = [p for base in blocks for p in (base, base + 1, base + 10_000, base + 10_001)]
    assert len(ports) == len(set(ports))

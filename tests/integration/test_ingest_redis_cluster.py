"""Ingest's Redis uses on a real 3-master Redis Cluster: each script call touches keys of one
hash slot, a batch's claims are split by slot, nothing relies on a single node."""

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from services.ingest.idempotency import ClaimOutcome, OrderIdempotency
from shared.ratelimit import RateLimiter
from tests.factories import make_order
from tests.integration.servers import RedisClusterNodes

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    yield from RedisClusterNodes.beside_the_stack(tmp_path_factory.mktemp("redis-cluster"), 1030)


@pytest.fixture
async def client(cluster: RedisClusterNodes) -> AsyncIterator[RedisCluster]:
    async for redis in cluster.client():
        yield redis


async def test_a_batch_of_claims_spread_over_every_master_answers_in_order(
    client: RedisCluster, run_id: str
) -> None:
    claims = OrderIdempotency(client, retention_s=600)
    orders = [make_order(f"{run_id}-{i}") for i in range(300)]
    masters = {
        client.get_node_from_key(OrderIdempotency.key(o.order_no)).name  # type: ignore[union-attr]
        for o in orders
    }
    assert len(masters) == 3
    assert len({key_slot(OrderIdempotency.key(o.order_no).encode()) for o in orders}) > 200

    first = await claims.claim([(o, f"e-{i}") for i, o in enumerate(orders)])
    await claims.confirm([(o, c) for o, c in zip(orders[:100], first[:100], strict=True)])
    await claims.release([(o, c) for o, c in zip(orders[100:], first[100:], strict=True)])
    again = await claims.claim([(o, f"f-{i}") for i, o in enumerate(orders)])

    assert [c.outcome for c in first] == [ClaimOutcome.CLAIMED] * 300
    assert [c.outcome for c in again[:100]] == [ClaimOutcome.DUPLICATE] * 100
    assert [c.event_id for c in again[:100]] == [f"e-{i}" for i in range(100)]
    assert [c.outcome for c in again[100:]] == [ClaimOutcome.CLAIMED] * 200
    assert await claims.customer_of(orders[0].order_no) == "C-1"


async def test_the_rate_limiter_counts_on_the_cluster(client: RedisCluster, run_id: str) -> None:
    limiter = RateLimiter(client, per_minute=2, clock=lambda: 600.0, namespace=run_id)

    answers = [await limiter.hit(f"key:{name}") for name in ("a", "a", "a", "b")]

    assert answers == [None, None, 60, None]

"""The customer figures on a real 3-master Redis Cluster: every script call touches one slot
(the customer's keys and that slot's epoch marker), and a master that restarts empty while the
others keep their data is seen by every batch, not only by the customers it serves."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, TimeoutError

from services.tagger.customers.live_figures import read_live
from services.tagger.figure_keys import Apply, epoch_key, keys_of
from services.tagger.figures import CustomerFigures, FiguresLost
from services.tagger.rules.facts import FiguresSnapshot
from shared.models import Order
from tests.conftest import eventually
from tests.factories import customer_order
from tests.integration.servers import RedisClusterNodes

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster]
WHEN = datetime(2026, 11, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    yield from RedisClusterNodes.beside_the_stack(tmp_path_factory.mktemp("figures-cluster"), 1010)


@pytest.fixture
async def client(cluster: RedisClusterNodes) -> AsyncIterator[RedisCluster]:
    async for redis in cluster.client():
        yield redis


def orders_of(run_id: str, customers: list[str], day: int) -> list[Order]:
    return [customer_order(f"{run_id}-{c}-{day}", c, WHEN + timedelta(days=day)) for c in customers]


def stored(order: Order, before: FiguresSnapshot) -> dict[str, Any]:
    """The order as MongoDB keeps it for a rebuild: the order and the figures it saw."""
    return {
        "order_no": order.order_no,
        "customer_id": order.customer.id,
        "order": order.model_dump(mode="json"),
        "figures": before.to_record(),
    }


def master_of(client: RedisCluster, customer: str) -> str:
    return str(client.get_node_from_key(keys_of(customer)[1]).name)  # type: ignore[union-attr]


async def test_a_master_restarted_empty_is_seen_by_every_batch_until_rebuilt(
    cluster: RedisClusterNodes, client: RedisCluster, run_id: str
) -> None:
    figures = CustomerFigures(client)
    customers = [f"{run_id}-c{n}" for n in range(60)]
    masters = {c: master_of(client, c) for c in customers}
    assert len(set(masters.values())) == 3

    async def no_orders() -> AsyncIterator[dict[str, Any]]:
        return
        yield

    await figures.ensure_loaded(no_orders)
    first = orders_of(run_id, customers, 0)
    seen = await figures.apply([Apply.of_order(o) for o in first])
    documents = [stored(o, s) for o, s in zip(first, seen, strict=True)]  # type: ignore[arg-type]
    live = await read_live(client, customers)
    assert {c: live[c].orders for c in customers} == dict.fromkeys(customers, 1)
    epoch = await figures.epoch()
    assert epoch is not None

    # one master dies and comes back empty (no persistence): its slots' markers are gone,
    # the other two masters keep theirs
    victim = next(
        node for node in cluster.nodes if f"127.0.0.1:{node.port}" == masters[customers[0]]
    )
    await victim.kill()
    await victim.start()
    kept = [c for c in customers if masters[c] != masters[customers[0]]]
    lost = [c for c in customers if masters[c] == masters[customers[0]]]

    async def answers_again() -> bool:
        try:
            await client.get(keys_of(lost[0])[1])
            return True
        except (RedisConnectionError, TimeoutError, RedisClusterException):
            return False

    await eventually(answers_again, within=30)
    second = orders_of(run_id, kept[:1], 1)

    with pytest.raises(FiguresLost):  # a customer of a master that kept its data: refused too
        await figures.apply([Apply.of_order(o) for o in second])
    with pytest.raises(FiguresLost):  # its figures would read as empty
        await read_live(client, lost[:1])
    assert (await read_live(client, kept[:1]))[kept[0]].orders == 1  # still whole
    assert await figures.epoch() is None

    async def stored_orders() -> AsyncIterator[dict[str, Any]]:
        for document in documents:
            yield document

    await figures.ensure_loaded(stored_orders)
    again = await figures.apply([Apply.of_order(o) for o in second])
    live = await read_live(client, customers)

    assert [s.prior_order_count for s in again] == [1]  # type: ignore[union-attr]
    assert live[kept[0]].orders == 2
    assert {c: live[c].orders for c in lost} == dict.fromkeys(lost, 1)  # rebuilt from MongoDB
    assert await figures.epoch() not in (None, epoch)


async def test_a_marker_from_an_earlier_run_of_a_master_is_refused_at_the_head_of_a_batch(
    client: RedisCluster, run_id: str
) -> None:
    """As after a restart from an append-only file (data kept, perhaps short of its last
    second): the marker names a run id the master no longer has."""
    figures = CustomerFigures(client)

    async def no_orders() -> AsyncIterator[dict[str, Any]]:
        return
        yield

    await figures.ensure_loaded(no_orders)
    await figures.rebuild(no_orders())
    slots = client.nodes_manager.slots_cache
    last_master_slot = max(
        min(s for s in slots if slots[s][0].name == node.name) for node in client.get_primaries()
    )
    await client.hset(epoch_key(last_master_slot), "run_id", "0" * 40)
    order = customer_order(f"{run_id}-1", f"{run_id}-c", WHEN)

    with pytest.raises(FiguresLost) as refused:
        await figures.apply([Apply.of_order(order)])

    assert refused.value.reason == "restarted"
    assert await client.exists(epoch_key(last_master_slot)) == 0  # every process rebuilds
    await figures.ensure_loaded(no_orders)
    [before] = await figures.apply([Apply.of_order(order)])
    assert before.prior_order_count == 0  # type: ignore[union-attr]
    assert (await figures.totals(f"{run_id}-c")).lifetime_spend == Decimal("100.00")

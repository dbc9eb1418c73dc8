"""The services on a real 3-master Redis Cluster, built by their own composition roots from the
settings (``redis_cluster``): ingest's claims, the tagger's figures, customer figures and rate
limits, the notifier's live updates and limits. Orders go ingest → Kafka → tagger end to end."""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio.cluster import RedisCluster

from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from services.notifier.settings import NotifierSettings, Role
from services.tagger.app import create_app as create_tagger
from services.tagger.figure_keys import keys_of
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated, StatusChanged
from shared.settings import Settings
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.conftest import api_client, assert_figures_exact, wait_for_orders
from tests.integration.servers import RedisClusterNodes
from tests.integration.test_tagger import send_through_ingest

pytestmark = [pytest.mark.integration, pytest.mark.redis_cluster]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    yield from RedisClusterNodes.beside_the_stack(tmp_path_factory.mktemp("services-cluster"), 1020)


@pytest.fixture
async def client(cluster: RedisClusterNodes) -> AsyncIterator[RedisCluster]:
    async for redis in cluster.client():
        yield redis


def on_cluster(settings: Settings, cluster: RedisClusterNodes) -> dict[str, Any]:
    """The test's settings with Redis on the cluster, named as an operator would: one node."""
    return {**settings.model_dump(), "redis_url": f"{cluster.url}/0", "redis_cluster": True}


async def test_orders_are_tagged_end_to_end_with_figures_exact_on_the_cluster(
    cluster: RedisClusterNodes,
    client: RedisCluster,
    settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    events, expected = order_stream(600, customers=60, seed=19, prefix=run_id)
    created = [e for e in events if isinstance(e, OrderCreated)]
    cancelled = {e.order_no for e in events if isinstance(e, StatusChanged)}
    masters = {
        client.get_node_from_key(keys_of(c)[1]).name  # type: ignore[union-attr]
        for c in expected.order_count
    }
    assert len(masters) == 3  # the customers' figures live on every master
    tagger_settings = TaggerSettings(
        **on_cluster(settings, cluster), tagger_group_id=f"tagger-{run_id}", tagger_port=0
    )
    ingest_settings = IngestSettings(**on_cluster(settings, cluster), ingest_publish_timeout_s=3.0)

    async with (
        api_client(create_ingest(ingest_settings)) as ingest,
        api_client(create_tagger(tagger_settings)) as tagger,  # consumer and Tag API
    ):
        await send_through_ingest(ingest, events)
        orders = await wait_for_orders(mongo_db, len(created), len(events))
        # customer tagging reads each customer's live figures from the cluster after its batch
        wanted = {
            c: (n, int(expected.lifetime_spend[c] * 100)) for c, n in expected.order_count.items()
        }

        async def customers_current() -> dict[str, tuple[int, int]] | None:
            cursor = mongo_db["customers"].find({}, {"orders": 1, "spend_cents": 1})
            seen = {d["_id"]: (d["orders"], d["spend_cents"]) async for d in cursor}
            return seen if seen == wanted else None

        await eventually(customers_current, within=60)
        answer = await tagger.get(f"/orders/{created[0].order.order_no}")  # rate limited
        readiness = [await app.get("/readyz") for app in (ingest, tagger)]  # they ping Redis

    assert answer.status_code == 200
    assert [r.status_code for r in readiness] == [200, 200]
    for event in created:
        order_no = event.order.order_no
        prior = expected.prior_orders[order_no]
        tags = set(orders[order_no]["tag_names"])
        assert ("new-customer" in tags) is (prior == 0), order_no
        assert ("returning-customer" in tags) is (prior > 0), order_no
        status = "cancelled" if order_no in cancelled else "pending"
        assert f"status:{status}" in tags, order_no
    await assert_figures_exact(client, expected)  # type: ignore[arg-type]
    # ingest's claims and both services' rate-limit windows are on the cluster too
    claims = [key async for key in client.scan_iter(match=f"ingest:order:{run_id}-*")]
    assert len(claims) == len(created)
    windows = [key async for key in client.scan_iter(match="ratelimit:{tagger:*")]
    assert windows


async def test_live_updates_reach_a_page_on_another_process_through_the_cluster(
    cluster: RedisClusterNodes, client: RedisCluster, settings: Settings, run_id: str
) -> None:
    """Two notifier processes (web role): a page open on one sees the changes the other makes;
    PUBLISH on a Redis Cluster reaches subscribers on every node."""
    notifier_settings = NotifierSettings(**on_cluster(settings, cluster), notifier_role=Role.WEB)
    alerts = [{"alert_id": f"{run_id}-{n}", "state": "open"} for n in range(5)]

    async with (
        notifier_bootstrap(notifier_settings) as page_side,
        notifier_bootstrap(notifier_settings) as changing_side,
    ):
        assert isinstance(page_side.redis, RedisCluster)
        pubsub = await page_side.live.subscribe()
        try:
            await changing_side.live.publish_many("opened", alerts)
            received: list[dict[str, Any]] = []

            async def all_received() -> bool:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received.append(json.loads(message["data"]))
                return len(received) >= len(alerts)

            await eventually(all_received, within=30)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
        for side in (page_side, changing_side, changing_side):  # one limit, both processes
            assert await side.login_limit.hit(f"ip:{run_id}") is None
        pattern = f"ratelimit:{{notifier:login:ip:{run_id}}}:*"  # a minute may turn meanwhile
        counted = sum([int(await client.get(key)) async for key in client.scan_iter(match=pattern)])

    assert [r["alert"]["alert_id"] for r in received] == [a["alert_id"] for a in alerts]
    assert {r["change"] for r in received} == {"opened"}
    assert counted == 3

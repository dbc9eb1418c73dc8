"""Redis killed under a running ingest: 503 with Retry-After (never 500), readiness says which
dependency is down, ingest recovers by itself, and clients ride the outage out losing nothing."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.simulator.ingest_client import IngestClient
from shared.auth import LOCAL_DEV_KEY
from shared.events import order_event_adapter
from tests.conftest import eventually
from tests.factories import order_payload
from tests.integration.conftest import api_client, read_topic
from tests.integration.servers import RedisServer, served_app

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start_sync()
    try:
        yield server
    finally:
        server.kill_sync()


@pytest.fixture
def outage_settings(ingest_settings: IngestSettings, redis_server: RedisServer) -> IngestSettings:
    return ingest_settings.model_copy(update={"redis_url": redis_server.url})


async def test_redis_killed_gives_503_with_retry_after_then_recovers(
    outage_settings: IngestSettings, redis_server: RedisServer, run_id: str
) -> None:
    async with api_client(create_app(outage_settings)) as client:

        async def accepted(order_no: str) -> bool:
            answer = await client.post("/orders", json=order_payload(order_no))
            return answer.status_code == 202

        # On a loaded machine the first publish to a new topic can outlast the 3 s publish
        # timeout: a 503 says "try again", which a client does.
        await eventually(lambda: accepted(f"{run_id}-before"), within=30, interval=0.5)
        await redis_server.kill()
        single = await client.post("/orders", json=order_payload(f"{run_id}-during"))
        batch = await client.post(
            "/orders/batch", json={"orders": [order_payload(f"{run_id}-b{i}") for i in range(3)]}
        )
        update = await client.put(
            f"/orders/{run_id}-before", json=order_payload(f"{run_id}-before", notes="changed")
        )
        unknown_status = await client.post(f"/orders/{run_id}-x/status", json={"status": "shipped"})
        ready = await client.get("/readyz")
        await redis_server.start()

        await eventually(lambda: accepted(f"{run_id}-during"), within=30, interval=0.5)
        ready_again = await client.get("/readyz")

    for answer in (single, batch, update, unknown_status):
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"].isdigit()
    assert "Redis" in single.json()["detail"]
    assert [item["outcome"] for item in batch.json()["items"]] == ["unavailable"] * 3
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"kafka": "ok", "redis": "unreachable"}
    assert ready.headers["Retry-After"].isdigit()
    assert ready_again.json() == {
        "status": "ready",
        "roles": ["ingest"],
        "checks": {"kafka": "ok", "redis": "ok"},
    }
    records = await read_topic(outage_settings, outage_settings.topics.orders, 2, extra_wait=1)
    published = [order_event_adapter.validate_json(r.value).order_no for r in records]
    # a publish that timed out may have landed all the same: once or more, never another order
    assert set(published) == {f"{run_id}-before", f"{run_id}-during"}


async def test_the_simulator_client_rides_out_a_redis_kill_and_loses_nothing(
    outage_settings: IngestSettings, redis_server: RedisServer, run_id: str
) -> None:
    orders = [order_payload(f"{run_id}-{i}") for i in range(60)]
    async with served_app(create_app(outage_settings), lifespan="on") as url:
        client = IngestClient(url, LOCAL_DEV_KEY, retry_for_s=60)
        try:
            await client.send_orders(orders[:20])
            await redis_server.kill()

            async def restart_later() -> None:
                await asyncio.sleep(1.5)  # an outage that lasts: the client must wait it out
                await redis_server.start()

            restart = asyncio.create_task(restart_later())
            await client.send_orders(orders[20:40])
            await restart
            await client.send_orders(orders[40:])
        finally:
            await client.aclose()

    tally = client.tally
    assert (tally.failed, tally.rejected) == (0, 0)
    assert tally.retried >= 1
    assert tally.accepted + tally.duplicates == 60
    records = await read_topic(outage_settings, outage_settings.topics.orders, 60, extra_wait=1)
    published = {order_event_adapter.validate_json(r.value).order_no for r in records}
    assert published == {o["order_no"] for o in orders}


async def test_a_client_retries_dropped_connections_and_503s_and_counts_them() -> None:
    """A real server that drops the first connection, answers 503 with Retry-After, then takes
    the batch: the client sends three times and reports two retries, nothing failed."""
    answers = [
        None,  # drop the connection without answering
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json"
        b"\r\nContent-Length: 17\r\nConnection: close\r\n\r\n"
        b'{"detail":"down"}',
    ]
    accepted = (
        b'{"accepted":2,"duplicates":0,"rejected":0,"items":['
        b'{"index":0,"order_no":"A","outcome":"accepted"},'
        b'{"index":1,"order_no":"B","outcome":"accepted"}]}'
    )
    answers.append(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(accepted)}\r\n\r\n".encode()
        + accepted
    )
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(
                b":"
            )[1]
        )
        await reader.readexactly(length)
        answer = answers[min(requests, len(answers) - 1)]
        requests += 1
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = IngestClient(f"http://127.0.0.1:{port}", "key", retry_for_s=30)
    try:
        await client.send_orders([order_payload("A"), order_payload("B")])
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()

    assert requests == 3
    assert (client.tally.accepted, client.tally.retried, client.tally.failed) == (2, 2, 0)

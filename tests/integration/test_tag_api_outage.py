"""The Tag API with its MongoDB or Redis really stopped (servers of the test's own): reads keep
working without Redis, writes answer 503, and without MongoDB every route answers 503 with
Retry-After; /readyz says which dependency is down. Never a 500."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.tagger.app import create_app
from services.tagger.settings import Role, TaggerSettings
from tests.conftest import eventually
from tests.integration.conftest import api_client
from tests.integration.servers import MongoServer, RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[tuple[MongoServer, RedisServer]]:
    mongo, redis = MongoServer(tmp_path / "mongo"), RedisServer(tmp_path / "redis")
    await mongo.start()
    await redis.start()
    try:
        yield mongo, redis
    finally:
        await redis.stop()
        await mongo.stop()


def api_settings(tagger_settings: TaggerSettings, mongo: Any, redis: Any) -> TaggerSettings:
    return tagger_settings.model_copy(
        update={
            "mongo_url": f"mongodb://127.0.0.1:{mongo.port}",
            "redis_url": f"redis://127.0.0.1:{redis.port}/0",
            "tagger_roles": frozenset({Role.API}),
            "tagger_mongo_timeout_ms": 1000,
        }
    )


def skipped_limits() -> float:
    return REGISTRY.get_sample_value("ordertag_tagger_rate_limit_skipped_total") or 0.0


async def test_redis_down_reads_still_answer_and_writes_answer_503(
    tagger_settings: TaggerSettings, servers: tuple[MongoServer, RedisServer]
) -> None:
    mongo, redis = servers
    async with api_client(create_app(api_settings(tagger_settings, mongo, redis))) as client:
        assert (await client.get("/orders")).status_code == 200
        before = skipped_limits()
        await redis.kill()
        orders = await client.get("/orders")
        catalog = await client.get("/tags")
        missing = await client.get("/orders/NO-SUCH-ORDER")
        write = await client.post("/tags", json={"name": "gift"})
        change = await client.post("/tags/bulk", json={"order_nos": ["x"], "add": ["vip"]})
        ready = await client.get("/readyz")
        await redis.start()

        async def writes_again() -> bool:  # by itself once Redis returns
            answer = await client.post("/tags", json={"name": "gift"})
            return answer.status_code == 201

        await eventually(writes_again, within=60, interval=0.5)

    assert orders.status_code == 200, orders.text
    assert catalog.status_code == 200, catalog.text
    assert catalog.json()  # the catalog the rule file seeded
    assert missing.status_code == 404
    assert skipped_limits() - before == 3  # each read counted in the process, not in Redis
    for answer in (write, change):
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == str(tagger_settings.tagger_retry_after_s)
        assert answer.json() == {"detail": "Redis is unreachable; retry later", "errors": []}
    assert ready.status_code == 200  # the API role can still serve reads
    assert ready.json()["checks"] == {"kafka": "ok", "mongodb": "ok", "redis": "unreachable"}


async def test_mongodb_down_every_route_answers_503_with_retry_after(
    tagger_settings: TaggerSettings, servers: tuple[MongoServer, RedisServer]
) -> None:
    mongo, redis = servers
    async with api_client(create_app(api_settings(tagger_settings, mongo, redis))) as client:
        await mongo.kill()
        answers: list[httpx.Response] = [
            await client.get("/orders"),
            await client.get("/orders/export.csv"),
            await client.get("/orders/SO-1"),
            await client.get("/tags"),
            await client.get("/tags/unused"),
            await client.get("/jobs/x"),
            await client.get("/reports/tag-share"),
            await client.get("/reports/top-customers", params={"tag": "urgent"}),
            await client.post("/tags", json={"name": "gift"}),
            await client.patch("/tags/urgent", json={"active": False}),
            await client.post("/tags/gift/merge", json={"into": "vip"}),
            await client.post("/orders/SO-1/tags", json={"add": ["vip"]}),
            await client.post("/tags/by-filter", json={"filter": {}, "add": ["vip"]}),
        ]
        ready = await client.get("/readyz")
        await mongo.start()

        async def back() -> bool:  # by itself, once the driver has found the server again
            return (await client.get("/orders")).status_code == 200

        await eventually(back, within=60, interval=0.5)

    for answer in answers:
        assert answer.status_code == 503, (answer.request.url, answer.text)
        assert answer.headers["Retry-After"] == str(tagger_settings.tagger_retry_after_s)
        assert answer.json()["detail"] == "MongoDB is unreachable; retry later"
    assert ready.status_code == 503
    assert ready.json()["checks"]["mongodb"] == "unreachable"

"""The notifier's HTTP side with a dependency down: stored changes still succeed, reads answer
503 with Retry-After (never 500), /readyz names what is down."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import free_port
from services.notifier.app import create_app
from services.notifier.metrics import DEPENDENCY_RETRIES
from services.notifier.settings import NotifierSettings, Role
from shared.settings import Settings
from tests.conftest import eventually
from tests.integration.conftest import api_client
from tests.integration.receivers import http_receiver
from tests.integration.test_notifier import (  # noqa: F401  (notifier_settings: a fixture)
    alerts_at,
    notifier,
    notifier_settings,
    publish_tagged,
    routing_file,
    tagged_event,
)

pytestmark = pytest.mark.integration


def web_settings(settings: Settings, tmp_path: Path, **down: str) -> NotifierSettings:
    """A web-role notifier on the local stack, with the named dependencies pointing at a port
    nothing listens on."""
    return NotifierSettings(
        **{**settings.model_dump(), **down},
        notifier_role=Role.WEB,
        notifier_routing_file=routing_file(tmp_path, [], []),
    )


@pytest.fixture
async def without_redis(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    async with api_client(create_app(web_settings(settings, tmp_path, redis_url=redis_url))) as c:
        yield c


@pytest.fixture
async def without_mongo(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    mongo_url = f"mongodb://127.0.0.1:{free_port()}"
    async with api_client(create_app(web_settings(settings, tmp_path, mongo_url=mongo_url))) as c:
        yield c


async def store_alert(db: AsyncDatabase[dict[str, Any]], alert_id: str) -> None:
    await db["alerts"].insert_one(
        {"alert_id": alert_id, "status": "open", "order_no": "SO-1", "deliveries": []}
    )


async def test_acknowledge_succeeds_with_redis_down_and_is_stored(
    without_redis: httpx.AsyncClient, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    await store_alert(mongo_db, "SO-1:support")

    answer = await without_redis.post("/api/alerts/SO-1:support/ack")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "acknowledged"
    stored = await mongo_db["alerts"].find_one({"alert_id": "SO-1:support"})
    assert stored is not None
    assert stored["status"] == "acknowledged"


async def test_live_updates_answer_503_with_retry_after_when_redis_is_down(
    without_redis: httpx.AsyncClient,
) -> None:
    answer = await without_redis.get("/api/events")

    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()["detail"] == "Redis is unreachable; retry later"


async def test_readyz_names_the_dependency_that_is_down(
    without_redis: httpx.AsyncClient,
) -> None:
    answer = await without_redis.get("/readyz")

    assert answer.status_code == 503
    assert answer.json()["checks"] == {"mongodb": "ok", "redis": "unreachable"}


async def test_reads_answer_503_with_retry_after_when_mongodb_is_down(
    without_mongo: httpx.AsyncClient,
) -> None:
    listing = await without_mongo.get("/api/alerts")
    detail = await without_mongo.get("/api/alerts/SO-1:support")
    ready = await without_mongo.get("/readyz")

    for answer in (listing, detail):
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) > 0
        assert answer.json()["detail"] == "MongoDB is unreachable; retry later"
    assert ready.json()["checks"]["mongodb"] == "unreachable"


async def test_reads_are_still_limited_and_answer_200_when_redis_is_down(
    without_redis: httpx.AsyncClient,
) -> None:
    answer = await without_redis.get("/api/alerts")

    assert answer.status_code == 200, answer.text


async def stack(*arguments: str) -> None:
    """The local stack's own script, on this run's ports (from the environment)."""
    script = Path(__file__).parents[2] / "deploy" / "local" / "stack.sh"
    run = await asyncio.create_subprocess_exec(
        str(script), *arguments, stdout=asyncio.subprocess.DEVNULL
    )
    assert await run.wait() == 0, f"stack.sh {' '.join(arguments)} failed"


def mongo_retries() -> float:
    return DEPENDENCY_RETRIES.labels("mongodb")._value.get()


async def test_the_consumer_waits_out_a_mongodb_outage_and_resumes_without_a_restart(
    notifier_settings: NotifierSettings,  # noqa: F811
    tmp_path: Path,
    run_id: str,
) -> None:
    async with http_receiver() as receiver:
        path = routing_file(
            tmp_path,
            [{"id": "hook", "type": "webhook", "url": f"{receiver.url}/hook", "unsigned": True}],
            ["hook"],
        )
        async with notifier(notifier_settings, path):
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-0", ["urgent"])])
            await alerts_at(receiver, "/hook", 1)
            retries_before = mongo_retries()
            await stack("stop", "mongo")
            try:
                events = [tagged_event(f"{run_id}-{i}", ["urgent"]) for i in (1, 2)]
                await publish_tagged(notifier_settings, events)
                await eventually(lambda: _true(mongo_retries() > retries_before), within=60)
            finally:
                await stack("start", "mongo")
            await alerts_at(receiver, "/hook", 3)

    ids = [a["alert_id"] for r in receiver.at("/hook") for a in json.loads(r.body)["alerts"]]
    assert sorted(ids) == sorted(f"{run_id}-{i}:support" for i in range(3))


async def _true(value: bool) -> bool:
    return value

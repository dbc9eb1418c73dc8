"""Integration fixtures: services started in-process against the real local stack."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from services.console.users import Role, UserStore
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.tagger.app import create_app as create_tagger
from services.tagger.figures import CustomerFigures
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.events import OrderCreated, OrderUpdated, StatusChanged, order_event_key
from shared.kafka import ensure_topics, make_broker
from shared.settings import Settings
from tests.conftest import eventually
from tests.generated import Expected, order_stream
from tests.integration.console_browser import PASSWORD
from tests.integration.servers import MongoServer, served_app


@pytest.fixture
def tagger_settings(settings: Settings, run_id: str) -> TaggerSettings:
    return TaggerSettings(
        **settings.model_dump(), tagger_group_id=f"tagger-{run_id}", tagger_port=0
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run an app's lifespan (its consumers and clients) for the duration of the block."""
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def tagger(tagger_settings: TaggerSettings) -> Any:
    return lambda: running(create_tagger(tagger_settings))


@pytest.fixture
def ingest_settings(settings: Settings) -> IngestSettings:
    return IngestSettings(**settings.model_dump(), ingest_publish_timeout_s=3.0)


@asynccontextmanager
async def api_client(
    app: FastAPI, key: str | None = LOCAL_DEV_KEY
) -> AsyncIterator[httpx.AsyncClient]:
    """An app run in-process (its lifespan too), and a client for it holding ``key``."""
    headers = {API_KEY_HEADER: key} if key else {}
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://app",
            headers=headers,
            timeout=30,
        ) as client,
    ):
        yield client


@pytest.fixture
async def ingest_client(ingest_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The ingest API in-process (real Kafka and Redis behind it), authenticated as the dev key."""
    async with api_client(create_ingest(ingest_settings)) as client:
        yield client


async def publish_events(
    settings: Settings, events: Sequence[OrderCreated | OrderUpdated | StatusChanged]
) -> None:
    """Publish order events as ingest does: keyed by customer, acknowledged by the broker."""
    await ensure_topics(settings)
    broker = make_broker(settings)
    async with broker:
        await broker.start()
        futures = [
            await broker.publish(
                e, topic=settings.topics.orders, key=order_event_key(e), no_confirm=True
            )
            for e in events
        ]
        for future in futures:
            await future


async def read_topic(
    settings: Settings, topic: str, expected: int, within: float = 60, extra_wait: float = 0.0
) -> list[Any]:
    """Read a topic from the start until ``expected`` records arrived (or fail after ``within``);
    then keep reading ``extra_wait`` seconds so that records beyond those expected show up."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(within):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=200)
                for partition_records in batch.values():
                    records.extend(partition_records)
        deadline = asyncio.get_running_loop().time() + extra_wait
        while asyncio.get_running_loop().time() < deadline:
            for partition_records in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(partition_records)
    except TimeoutError:
        message = f"{topic}: {len(records)} of {expected} records within {within} s"
        raise AssertionError(message) from None
    finally:
        await consumer.stop()
    return records


async def stored_orders(db: AsyncDatabase[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["order_no"]: d async for d in db["orders"].find({}, {"_id": 0})}


async def wait_for_orders(
    db: AsyncDatabase[dict[str, Any]], count: int, applied_events: int, within: float = 120
) -> dict[str, dict[str, Any]]:
    """Wait until the tagger stored ``count`` orders and applied ``applied_events`` events."""

    async def all_applied() -> dict[str, dict[str, Any]] | None:
        orders = await stored_orders(db)
        applied = sum(len(o["applied_events"]) for o in orders.values())
        return orders if len(orders) == count and applied == applied_events else None

    result: dict[str, dict[str, Any]] = await eventually(all_applied, within=within)
    return result


async def assert_figures_exact(redis: Redis, expected: Expected) -> None:
    """Every customer's live figures equal the independent calculation of the test stream."""
    figures = CustomerFigures(redis)
    for customer_id, count in expected.order_count.items():
        totals = await figures.totals(customer_id)
        assert (totals.order_count, totals.lifetime_spend) == (
            count,
            expected.lifetime_spend[customer_id],
        ), customer_id


@pytest.fixture
async def mongo_server(tmp_path: Path) -> AsyncIterator[MongoServer]:
    """A MongoDB-wire server of this test's own, to kill and restart."""
    server = MongoServer(tmp_path / "mongo")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def console_url(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[str]:
    """The console (the tagger's HTTP process) over 120 orders of 15 customers, tagged; 王小明
    (an admin) and viewer sign in with ``PASSWORD``. The customer pages' tests have their own."""
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create("王小明", Role.ADMIN, PASSWORD)
    await users.create("viewer", Role.VIEWER, PASSWORD)
    events, _ = order_stream(120, customers=15, seed=8, prefix=run_id)
    await publish_events(tagger_settings, events)
    app = create_tagger(tagger_settings)
    async with served_app(app) as url:
        created = sum(isinstance(e, OrderCreated) for e in events)
        await wait_for_orders(mongo_db, created, len(events), within=90)
        yield url

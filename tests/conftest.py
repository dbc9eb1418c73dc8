"""Fixtures shared by unit and integration tests."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from shared.settings import Settings, Topics


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 20.0, interval: float = 0.05
) -> Any:
    """Wait until ``check()`` returns something truthy, or fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s (last: {result!r})")
        await asyncio.sleep(interval)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(run_id: str) -> Settings:
    """Settings on the local stack with topics and a database of this test's own."""
    return Settings(
        mongo_database=f"test_{run_id}",
        topics=Topics.prefixed(f"t-{run_id}"),
    )


@pytest.fixture
async def mongo_db(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    try:
        yield client[settings.mongo_database]
    finally:
        await client.drop_database(settings.mongo_database)
        await client.close()


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()

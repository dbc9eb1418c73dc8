"""Fixtures shared by unit and integration tests."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_timeout
from aiokafka.errors import KafkaError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from shared.diagnostics import task_stacks
from shared.kafka import delete_topics
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


def _dump_threads_and_tasks(terminal: Any, dump_threads: Callable[[Any], None]) -> None:
    """On a test timeout, print where every asyncio task waits, not only the threads: a hung
    async test shows its event loop idle in ``select``, and the task stacks say on what."""
    dump_threads(terminal)
    loop = asyncio._get_running_loop()
    if loop is None:
        return
    for name, frames in task_stacks(loop).items():
        terminal.sep("~", title=f"Task {name}")
        terminal.write("\n".join(frames) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    dump_threads = pytest_timeout.dump_stacks
    pytest_timeout.dump_stacks = lambda terminal: _dump_threads_and_tasks(terminal, dump_threads)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


# The topics this session's tests were given: deleted when the session ends
_TOPICS_GIVEN: list[Topics] = []


def own_topics(run_id: str) -> Topics:
    """Topics of a test's own (``t-RUN.orders``, ...), deleted when the session ends."""
    topics = Topics.prefixed(f"t-{run_id}")
    _TOPICS_GIVEN.append(topics)
    return topics


@pytest.fixture
def settings(run_id: str) -> Settings:
    """Settings on the local stack with topics and a database of this test's own."""
    return Settings(mongo_database=f"test_{run_id}", topics=own_topics(run_id))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete the topics this session's tests made: every test has its own, thousands of
    partitions a full run, and a local stack kept through a day of runs took minutes to
    restart Kafka (the chaos test then failed). Nothing to do without a running Kafka."""
    if not _TOPICS_GIVEN:
        return

    async def delete() -> None:
        async with asyncio.timeout(60):
            await delete_topics(Settings(), _TOPICS_GIVEN)

    with contextlib.suppress(KafkaError, OSError, TimeoutError):
        asyncio.run(delete())


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
    # A reply may wait on a loaded machine (a figures rebuild's pipeline of 1,000 scripts took
    # over 5 s at load 20); a stopped server still fails at once (connection refused).
    client = Redis.from_url(settings.redis_url, socket_timeout=30, socket_connect_timeout=5)
    try:
        yield client
    finally:
        await client.aclose()

"""The local stack's servers, over real connections."""

import asyncio
from typing import Any

import pytest
from faststream import Context
from faststream.kafka import KafkaBroker
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from shared.events import OrderCreated, order_event_key
from shared.kafka import make_broker
from shared.models import Order
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import order_payload

pytestmark = pytest.mark.integration


async def test_order_event_published_with_faststream_reaches_a_consumer_group(
    settings: Settings, run_id: str
) -> None:
    received: list[tuple[OrderCreated, bytes | None]] = []
    consumer = KafkaBroker(settings.kafka_bootstrap_servers)

    @consumer.subscriber(
        settings.topics.orders, group_id=f"group-{run_id}", auto_offset_reset="earliest"
    )
    async def collect(event: OrderCreated, key: bytes = Context("message.raw_message.key")) -> None:
        received.append((event, key))

    producer = make_broker(settings)
    event = OrderCreated(order=Order.model_validate(order_payload("SO-STACK-1")))
    async with producer, consumer:
        await consumer.start()
        await producer.publish(event, topic=settings.topics.orders, key=order_event_key(event))

        async def arrived() -> bool:
            return bool(received)

        await eventually(arrived)

    assert received == [(event, b"C-1")]


async def test_unique_order_number_index_rejects_a_duplicate(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    orders = mongo_db["orders"]
    await orders.create_index("order_no", unique=True)
    await orders.insert_one({"order_no": "SO-1", "status": "pending"})

    with pytest.raises(DuplicateKeyError):
        await orders.insert_one({"order_no": "SO-1", "status": "shipped"})

    stored = await orders.find({}, {"_id": 0}).to_list(None)
    assert stored == [{"order_no": "SO-1", "status": "pending"}]


async def test_redis_round_trip(redis_client: Redis, run_id: str) -> None:
    key = f"test:{run_id}"
    await redis_client.set(key, "figures", ex=60)

    assert await redis_client.get(key) == b"figures"
    assert await redis_client.delete(key) == 1
    await asyncio.sleep(0)

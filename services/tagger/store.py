"""MongoDB reads and writes for orders and their tag history."""

from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.dead_letters import OrderEventModel
from shared.events import StatusChanged


class OrderStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.orders = database["orders"]
        self.tag_history = database["tag_history"]

    async def ensure_indexes(self) -> None:
        await self.orders.create_index([("order_no", ASCENDING)], unique=True)
        await self.orders.create_index([("tag_names", ASCENDING)])
        await self.orders.create_index([("customer_id", ASCENDING)])

    async def save_orders(self, events: list[OrderEventModel]) -> None:
        """Upsert each order by its number in one bulk round trip; re-applying changes nothing."""
        writes = []
        for event in events:
            if isinstance(event, StatusChanged):
                writes.append(
                    UpdateOne(
                        {"order_no": event.order_no}, {"$set": {"status": event.status.value}}
                    )
                )
                continue
            order = event.order.model_dump(mode="json")
            writes.append(
                UpdateOne(
                    {"order_no": event.order_no},
                    {
                        "$set": {
                            "order": order,
                            "customer_id": event.customer_id,
                            "status": event.order.status.value,
                        }
                    },
                    upsert=True,
                )
            )
        if writes:
            await self.orders.bulk_write(writes, ordered=True)

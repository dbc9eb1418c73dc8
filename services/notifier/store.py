"""Alerts in MongoDB: exactly one per order and kind (unique alert_id), with their deliveries."""

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.notifier.routing import Route
from shared.events import Alert

PAGE_SIZE_MAX = 500


class AlertStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.alerts = database["alerts"]
        self.attempts = database["delivery_attempts"]
        self.orders = database["orders"]  # the tagger's, read for the detail view

    async def ensure_indexes(self) -> None:
        await self.alerts.create_index([("alert_id", ASCENDING)], unique=True)
        await self.alerts.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
        await self.alerts.create_index([("deliveries.status", ASCENDING)])
        await self.attempts.create_index([("alert_ids", ASCENDING), ("at", DESCENDING)])

    async def insert_new(self, alert: Alert, route: Route) -> dict[str, Any] | None:
        """Store the alert unless it exists; the document when new, None for a repeat."""
        document = {
            **alert.model_dump(mode="json"),
            "created_at": alert.created_at,
            "team": route.team,
            "route_id": route.id,
            "status": "open",
            "escalated": False,
            "deliveries": [
                {"channel": c, "status": "pending", "attempts": 0} for c in route.channels
            ],
        }
        try:
            await self.alerts.insert_one(document)
        except DuplicateKeyError:
            return None
        document.pop("_id", None)
        return document

    async def record_attempt(
        self,
        alert_ids: list[str],
        channel: str,
        ok: bool,
        latency_s: float,
        error: str | None,
        final: bool,
    ) -> None:
        now = datetime.now(UTC)
        await self.attempts.insert_one(
            {
                "alert_ids": alert_ids,
                "channel": channel,
                "status": "ok" if ok else "error",
                "latency_ms": round(latency_s * 1000, 1),
                "error": error,
                "at": now,
            }
        )
        status = "delivered" if ok else ("failed" if final else "pending")
        await self.alerts.update_many(
            {"alert_id": {"$in": alert_ids}, "deliveries.channel": channel},
            {
                "$set": {
                    "deliveries.$.status": status,
                    "deliveries.$.last_error": error,
                    "deliveries.$.updated_at": now,
                },
                "$inc": {"deliveries.$.attempts": 1},
            },
        )

    async def add_deliveries(self, alert_id: str, channels: list[str]) -> None:
        for channel in channels:
            await self.alerts.update_one(
                {"alert_id": alert_id, "deliveries.channel": {"$ne": channel}},
                {"$push": {"deliveries": {"channel": channel, "status": "pending", "attempts": 0}}},
            )

    async def pending_deliveries(self) -> list[dict[str, Any]]:
        cursor = self.alerts.find({"deliveries.status": "pending"}, {"_id": 0})
        return await cursor.to_list(None)

    async def find_alerts(
        self,
        *,
        status: str | None,
        severity: str | None,
        tag: str | None,
        team: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        for field, value in (
            ("status", status),
            ("severity", severity),
            ("tags", tag),
            ("team", team),
        ):
            if value:
                query[field] = value
        cursor = self.alerts.find(query, {"_id": 0}).sort("created_at", DESCENDING)
        return await cursor.limit(min(limit, PAGE_SIZE_MAX)).to_list(None)

    async def get(self, alert_id: str) -> dict[str, Any] | None:
        return await self.alerts.find_one({"alert_id": alert_id}, {"_id": 0})

    async def order_of(self, order_no: str) -> dict[str, Any] | None:
        return await self.orders.find_one(
            {"order_no": order_no}, {"_id": 0, "order.customer": 0, "figures": 0}
        )

    async def acknowledge(self, alert_id: str, who: str) -> dict[str, Any] | None:
        return await self.alerts.find_one_and_update(
            {"alert_id": alert_id},
            {
                "$set": {
                    "status": "acknowledged",
                    "acknowledged_by": who,
                    "acknowledged_at": datetime.now(UTC),
                }
            },
            projection={"_id": 0},
            return_document=ReturnDocument.AFTER,
        )

    async def claim(self, alert_id: str, who: str) -> dict[str, Any] | None:
        return await self.alerts.find_one_and_update(
            {"alert_id": alert_id},
            {"$set": {"claimed_by": who, "claimed_at": datetime.now(UTC)}},
            projection={"_id": 0},
            return_document=ReturnDocument.AFTER,
        )

    async def due_for_escalation(self, cutoff: datetime, kinds: list[str]) -> list[dict[str, Any]]:
        cursor = self.alerts.find(
            {
                "status": "open",
                "escalated": False,
                "kind": {"$in": kinds},
                "created_at": {"$lte": cutoff},
            },
            {"_id": 0},
        )
        return await cursor.to_list(None)

    async def mark_escalated(self, alert_id: str) -> bool:
        """True for the one caller that flips it: escalation happens once across processes."""
        result = await self.alerts.update_one(
            {"alert_id": alert_id, "escalated": False},
            {"$set": {"escalated": True, "escalated_at": datetime.now(UTC)}},
        )
        return result.modified_count == 1

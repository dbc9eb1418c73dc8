"""Alerts in MongoDB: exactly one per order and kind (unique alert_id), with their deliveries."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateMany
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.notifier.routing import Route
from shared.events import Alert
from shared.mongo import SCAN_BATCH

PAGE_SIZE_MAX = 500
DUPLICATE_KEY = 11000


def _document(alert: Alert, route: Route) -> dict[str, Any]:
    return {
        **alert.model_dump(mode="json"),
        "created_at": alert.created_at,
        "team": route.team,
        "route_id": route.id,
        "status": "open",
        "escalated": False,
        "deliveries": [{"channel": c, "status": "pending", "attempts": 0} for c in route.channels],
    }


class AlertStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.alerts = database["alerts"]
        self.attempts = database["delivery_attempts"]
        self.orders = database["orders"]  # the tagger's, read for the detail view
        self._attempts: list[tuple[list[str], str, bool, float, str | None, bool, datetime]] = []

    async def ensure_indexes(self) -> None:
        await self.alerts.create_index([("alert_id", ASCENDING)], unique=True)
        await self.alerts.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
        await self.alerts.create_index([("deliveries.status", ASCENDING)])
        await self.attempts.create_index([("alert_ids", ASCENDING), ("at", DESCENDING)])

    async def insert_new(self, alerts: list[tuple[Alert, Route]]) -> list[dict[str, Any] | None]:
        """Store the alerts that do not exist yet, in one round trip; per alert, its document
        when new, None when it existed (the unique alert_id refused it)."""
        documents = [_document(alert, route) for alert, route in alerts]
        refused: set[int] = set()
        try:
            await self.alerts.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            for failure in error.details["writeErrors"]:
                if failure["code"] != DUPLICATE_KEY:
                    raise
                refused.add(failure["index"])
        for document in documents:
            document.pop("_id", None)
        return [None if i in refused else d for i, d in enumerate(documents)]

    def record_attempt(
        self,
        alert_ids: list[str],
        channel: str,
        ok: bool,
        latency_s: float,
        error: str | None,
        final: bool,
    ) -> None:
        """Log a delivery attempt; written with the others every ``FLUSH_S`` (one round trip
        instead of two per delivery)."""
        self._attempts.append((alert_ids, channel, ok, latency_s, error, final, datetime.now(UTC)))

    async def flush_attempts(self) -> None:
        batch, self._attempts = self._attempts, []
        if not batch:
            return
        await self.attempts.insert_many(
            [
                {
                    "alert_ids": ids,
                    "channel": channel,
                    "status": "ok" if ok else "error",
                    "latency_ms": round(latency * 1000, 1),
                    "error": error,
                    "at": at,
                }
                for ids, channel, ok, latency, error, _, at in batch
            ]
        )
        await self.alerts.bulk_write(
            [
                UpdateMany(
                    {"alert_id": {"$in": ids}, "deliveries.channel": channel},
                    {
                        "$set": {
                            "deliveries.$.status": "delivered"
                            if ok
                            else ("failed" if final else "pending"),
                            "deliveries.$.last_error": error,
                            "deliveries.$.updated_at": at,
                        },
                        "$inc": {"deliveries.$.attempts": 1},
                    },
                )
                for ids, channel, ok, _, error, final, at in batch
            ],
            ordered=True,
        )

    async def flush_attempts_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.flush_attempts()

    async def add_deliveries(self, alert_id: str, channels: list[str]) -> None:
        for channel in channels:
            await self.alerts.update_one(
                {"alert_id": alert_id, "deliveries.channel": {"$ne": channel}},
                {"$push": {"deliveries": {"channel": channel, "status": "pending", "attempts": 0}}},
            )

    async def pending_deliveries(self) -> list[dict[str, Any]]:
        cursor = self.alerts.find(
            {"deliveries.status": "pending"}, {"_id": 0}, batch_size=SCAN_BATCH
        )
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

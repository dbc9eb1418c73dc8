"""Alerts in MongoDB: exactly one per order and kind (unique alert_id), with their deliveries.

Each alert holds one delivery per channel. A delivery moves ``pending`` → ``sending`` (claimed
with an attempt id *before* anything is sent) → ``delivered`` | ``failed``; a claim that outlives
its lease was interrupted (the process died mid-send) and is settled by the delivery sweeper:
sent again under the same idempotency key, or marked ``uncertain`` (see docs/notifier.md).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.notifier.routing import Route
from shared.events import Alert
from shared.mongo import DUPLICATE_KEY, SCAN_BATCH
from shared.stored_tags import readable_tags

PAGE_SIZE_MAX = 500


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not claimed: nothing was sent
    SENDING = "sending"  # claimed by an attempt id: may or may not have reached the channel
    DELIVERED = "delivered"
    FAILED = "failed"  # every retry refused
    UNCERTAIN = "uncertain"  # interrupted mid-send on a channel without idempotency: not resent


@dataclass(frozen=True, slots=True)
class InterruptedClaim:
    """A claim whose process stopped answering: the alerts it held, as they were claimed."""

    channel: str
    attempt_id: str
    idempotency_key: str | None
    escalation: bool
    alerts: list[dict[str, Any]]


def _on(channel: str) -> list[dict[str, Any]]:
    """The array filter ``d`` naming a channel's delivery (an alert has one per channel; the
    query says which state it must be in). Two faults of the local MongoDB-wire server shape
    this: the positional ``$`` after ``$elemMatch`` fails on elements with fields the query does
    not name, and array filters are re-checked after each field is set (so a filter on
    ``status`` would stop after the first ``$set``)."""
    return [{"d.channel": channel}]


def _delivery(channel: str, escalation: bool = False) -> dict[str, Any]:
    return {
        "channel": channel,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "escalation": escalation,
    }


def _document(alert: Alert, route: Route) -> dict[str, Any]:
    return {
        **alert.model_dump(mode="json"),
        "created_at": alert.created_at,
        "team": route.team,
        "route_id": route.id,
        "status": "open",
        "escalated": False,
        "published": False,  # on the alerts topic; set once Kafka acknowledged it
        "deliveries": [_delivery(c) for c in route.channels],
    }


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

    async def ping(self) -> None:
        await self.alerts.database.command("ping")

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

    async def unpublished(self, alert_ids: list[str]) -> list[dict[str, Any]]:
        cursor = self.alerts.find({"alert_id": {"$in": alert_ids}, "published": False}, {"_id": 0})
        return await cursor.to_list(None)

    async def mark_published(self, alert_ids: list[str]) -> None:
        await self.alerts.update_many(
            {"alert_id": {"$in": alert_ids}}, {"$set": {"published": True}}
        )

    async def add_deliveries(self, alert_id: str, channels: list[str], escalation: bool) -> None:
        for channel in channels:
            await self.alerts.update_one(
                {"alert_id": alert_id, "deliveries.channel": {"$ne": channel}},
                {"$push": {"deliveries": _delivery(channel, escalation)}},
            )

    async def pending_deliveries(
        self, created_before: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Alerts with a delivery nobody claimed (created before ``created_before`` when given)."""
        query: dict[str, Any] = {"deliveries.status": DeliveryStatus.PENDING.value}
        if created_before is not None:
            query["created_at"] = {"$lt": created_before}
        cursor = self.alerts.find(query, {"_id": 0}, batch_size=SCAN_BATCH)
        return await cursor.to_list(None)

    async def claim_deliveries(
        self,
        alert_ids: list[str],
        channel: str,
        attempt_id: str,
        idempotency_key: str,
        *,
        taking_over: str | None = None,
    ) -> list[str]:
        """Claim the channel's deliveries of these alerts for ``attempt_id``, before sending:
        pending ones, or (``taking_over``) those an interrupted attempt held. Returns the ids
        claimed; another process or attempt may have claimed the rest."""
        held = (
            {"status": DeliveryStatus.PENDING.value}
            if taking_over is None
            else {"status": DeliveryStatus.SENDING.value, "attempt_id": taking_over}
        )
        now = datetime.now(UTC)
        result = await self.alerts.update_many(
            {
                "alert_id": {"$in": alert_ids},
                "deliveries": {"$elemMatch": {"channel": channel, **held}},
            },
            {
                "$set": {
                    "deliveries.$[d].status": DeliveryStatus.SENDING.value,
                    "deliveries.$[d].attempt_id": attempt_id,
                    "deliveries.$[d].idempotency_key": idempotency_key,
                    "deliveries.$[d].claimed_at": now,
                    "deliveries.$[d].updated_at": now,
                }
            },
            array_filters=_on(channel),
        )
        if result.modified_count == len(alert_ids):
            return alert_ids
        if result.modified_count == 0:
            return []
        return await self._held_by(alert_ids, channel, attempt_id)

    async def _held_by(self, alert_ids: list[str], channel: str, attempt_id: str) -> list[str]:
        cursor = self.alerts.find(
            {
                "alert_id": {"$in": alert_ids},
                "deliveries": {"$elemMatch": {"channel": channel, "attempt_id": attempt_id}},
            },
            {"_id": 0, "alert_id": 1},
        )
        return [document["alert_id"] async for document in cursor]

    async def record_failed_attempt(
        self, alert_ids: list[str], channel: str, attempt_id: str, error: str
    ) -> None:
        """One attempt failed and another follows: the claim stays ours and its lease renews."""
        now = datetime.now(UTC)
        await self.alerts.update_many(
            {
                "alert_id": {"$in": alert_ids},
                "deliveries": {"$elemMatch": {"channel": channel, "attempt_id": attempt_id}},
            },
            {
                "$set": {
                    "deliveries.$[d].last_error": error,
                    "deliveries.$[d].claimed_at": now,
                    "deliveries.$[d].updated_at": now,
                },
                "$inc": {"deliveries.$[d].attempts": 1},
            },
            array_filters=_on(channel),
        )

    async def settle(
        self,
        alert_ids: list[str],
        channel: str,
        attempt_id: str,
        status: DeliveryStatus,
        error: str | None = None,
        *,
        attempted: bool = True,
    ) -> None:
        """The claim's outcome, stored before the process forgets it."""
        update: dict[str, Any] = {
            "$set": {
                "deliveries.$[d].status": status.value,
                "deliveries.$[d].last_error": error,
                "deliveries.$[d].updated_at": datetime.now(UTC),
            }
        }
        if attempted:
            update["$inc"] = {"deliveries.$[d].attempts": 1}
        await self.alerts.update_many(
            {
                "alert_id": {"$in": alert_ids},
                "deliveries": {
                    "$elemMatch": {
                        "channel": channel,
                        "attempt_id": attempt_id,
                        "status": DeliveryStatus.SENDING.value,
                    }
                },
            },
            update,
            array_filters=_on(channel),
        )

    async def interrupted_claims(self, claimed_before: datetime) -> list[InterruptedClaim]:
        """Claims whose lease ran out: their process died (or hung) between claim and outcome."""
        cursor = self.alerts.find(
            {
                "deliveries": {
                    "$elemMatch": {
                        "status": DeliveryStatus.SENDING.value,
                        "claimed_at": {"$lt": claimed_before},
                    }
                }
            },
            {"_id": 0},
            batch_size=SCAN_BATCH,
        )
        groups: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(
            list
        )
        async for document in cursor:
            for delivery in document["deliveries"]:
                claimed_at = delivery.get("claimed_at")
                if (
                    delivery["status"] == DeliveryStatus.SENDING.value
                    and claimed_at is not None
                    and claimed_at < claimed_before
                ):
                    groups[(delivery["channel"], delivery["attempt_id"])].append(
                        (document, delivery)
                    )
        return [
            InterruptedClaim(
                channel=channel,
                attempt_id=attempt_id,
                idempotency_key=members[0][1].get("idempotency_key"),
                escalation=bool(members[0][1].get("escalation", False)),
                alerts=[document for document, _ in members],
            )
            for (channel, attempt_id), members in groups.items()
        ]

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

    async def attempts_of(self, alert_id: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self.attempts.find({"alert_ids": alert_id}, {"_id": 0}).sort("at", DESCENDING)
        return await cursor.limit(limit).to_list(None)

    async def order_of(self, order_no: str) -> dict[str, Any] | None:
        """The tagger's order, its tags in full (stored compact: ``shared/stored_tags.py``;
        without the tagger's rules a rule tag's reason names its rule, version and values)."""
        document = await self.orders.find_one(
            {"order_no": order_no}, {"_id": 0, "order.customer": 0, "figures": 0}
        )
        if document is not None:
            document["tags"] = readable_tags(document, None)
            document.pop("tags_at", None)
        return document

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

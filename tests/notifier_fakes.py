"""In-memory stand-ins for the notifier's adapters, for fast tests of its use cases. The store
fake keeps the same contract as ``AlertStore`` (tests/integration/test_notifier_store_contract.py
runs the same assertions on both)."""

import copy
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from aiokafka.errors import KafkaConnectionError

from services.notifier.channels import DeliveryError, Message
from services.notifier.routing import AnyChannel, Route
from services.notifier.store import DeliveryStatus, InterruptedClaim, _document
from shared.events import Alert


class InMemoryAlertStore:
    def __init__(self) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}

    def _delivery(self, alert_id: str, channel: str) -> dict[str, Any] | None:
        document = self.alerts.get(alert_id)
        if document is None:
            return None
        return next((d for d in document["deliveries"] if d["channel"] == channel), None)

    async def insert_new(self, alerts: list[tuple[Alert, Route]]) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        for alert, route in alerts:
            if alert.alert_id in self.alerts:
                found.append(None)
                continue
            document = _document(alert, route)
            self.alerts[alert.alert_id] = document
            found.append(copy.deepcopy(document))
        return found

    async def unpublished(self, alert_ids: list[str]) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(self.alerts[i])
            for i in alert_ids
            if i in self.alerts and not self.alerts[i]["published"]
        ]

    async def mark_published(self, alert_ids: list[str]) -> None:
        for alert_id in alert_ids:
            self.alerts[alert_id]["published"] = True

    async def add_deliveries(self, alert_id: str, channels: list[str], escalation: bool) -> None:
        for channel in channels:
            if self._delivery(alert_id, channel) is None:
                self.alerts[alert_id]["deliveries"].append(
                    {
                        "channel": channel,
                        "status": "pending",
                        "attempts": 0,
                        "escalation": escalation,
                    }
                )

    async def pending_deliveries(
        self, created_before: datetime | None = None
    ) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(d)
            for d in self.alerts.values()
            if any(x["status"] == DeliveryStatus.PENDING for x in d["deliveries"])
            and (created_before is None or d["created_at"] < created_before)
        ]

    async def claim_deliveries(
        self,
        alert_ids: list[str],
        channel: str,
        attempt_id: str,
        idempotency_key: str,
        *,
        taking_over: str | None = None,
    ) -> list[str]:
        claimed = []
        now = datetime.now(UTC)
        for alert_id in alert_ids:
            delivery = self._delivery(alert_id, channel)
            if delivery is None:
                continue
            if taking_over is None and delivery["status"] != DeliveryStatus.PENDING:
                continue
            if taking_over is not None and (
                delivery["status"] != DeliveryStatus.SENDING
                or delivery.get("attempt_id") != taking_over
            ):
                continue
            delivery.update(
                status=DeliveryStatus.SENDING.value,
                attempt_id=attempt_id,
                idempotency_key=idempotency_key,
                claimed_at=now,
                updated_at=now,
            )
            claimed.append(alert_id)
        return claimed

    def _held(self, alert_ids: list[str], channel: str, attempt_id: str) -> list[dict[str, Any]]:
        held = [self._delivery(alert_id, channel) for alert_id in alert_ids]
        return [d for d in held if d is not None and d.get("attempt_id") == attempt_id]

    async def record_failed_attempt(
        self, alert_ids: list[str], channel: str, attempt_id: str, error: str
    ) -> None:
        now = datetime.now(UTC)
        for delivery in self._held(alert_ids, channel, attempt_id):
            delivery.update(last_error=error, claimed_at=now, updated_at=now)
            delivery["attempts"] += 1

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
        for delivery in self._held(alert_ids, channel, attempt_id):
            if delivery["status"] != DeliveryStatus.SENDING:
                continue
            delivery.update(status=status.value, last_error=error, updated_at=datetime.now(UTC))
            if attempted:
                delivery["attempts"] += 1

    async def interrupted_claims(self, claimed_before: datetime) -> list[InterruptedClaim]:
        groups: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(
            list
        )
        for document in self.alerts.values():
            for d in document["deliveries"]:
                if d["status"] == DeliveryStatus.SENDING and d["claimed_at"] < claimed_before:
                    groups[(d["channel"], d["attempt_id"])].append((document, d))
        return [
            InterruptedClaim(
                channel=channel,
                attempt_id=attempt_id,
                idempotency_key=members[0][1].get("idempotency_key"),
                escalation=bool(members[0][1].get("escalation", False)),
                alerts=[copy.deepcopy(document) for document, _ in members],
            )
            for (channel, attempt_id), members in groups.items()
        ]

    async def due_for_escalation(self, cutoff: datetime, kinds: list[str]) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(d)
            for d in self.alerts.values()
            if d["status"] == "open"
            and not d["escalated"]
            and d["kind"] in kinds
            and d["created_at"] <= cutoff
        ]

    async def mark_escalated(self, alert_id: str) -> bool:
        document = self.alerts[alert_id]
        if document["escalated"]:
            return False
        document["escalated"] = True
        return True


class RecordingSender:
    """A channel's receiving end: every message sent, in order; ``fail`` sends refuse."""

    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.fail = fail

    async def send(self, channel: AnyChannel, message: Message) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError(f"{channel.id}: HTTP 500")
        self.sent.append((channel.id, message))

    def alert_ids(self, channel: str) -> list[str]:
        return [a.alert_id for c, m in self.sent if c == channel for a in m.alerts]


class MemoryCollection:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    async def insert_many(self, documents: list[dict[str, Any]], ordered: bool) -> None:
        self.documents.extend(documents)


class SilentLive:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    async def publish(self, change: str, alert: dict[str, Any]) -> None:
        self.changes.append((change, alert.get("alert_id", "")))

    async def publish_many(self, change: str, alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            await self.publish(change, alert)


class MemorySeen:
    def __init__(self, down: bool = False) -> None:
        self.ids: set[str] = set()
        self.down = down

    async def known(self, alert_ids: list[str]) -> list[bool]:
        if self.down:
            raise redis.exceptions.ConnectionError("redis down")
        return [i in self.ids for i in alert_ids]

    async def remember(self, alert_ids: list[str]) -> None:
        if not self.down:
            self.ids.update(alert_ids)


class RecordingPublisher:
    def __init__(self, fail: int = 0) -> None:
        self.published: list[str] = []
        self.fail = fail

    async def __call__(self, alerts: list[Alert]) -> None:
        if self.fail:
            self.fail -= 1
            raise KafkaConnectionError("kafka down")
        self.published.extend(a.alert_id for a in alerts)

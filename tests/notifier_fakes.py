"""In-memory stand-ins for the notifier's adapters, for fast tests of its use cases. The store
fake keeps the same contract as ``AlertStore`` (tests/integration/test_notifier_store_contract.py
runs the same assertions on both)."""

import asyncio
import copy
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaConnectionError

from services.notifier.channels import DeliveryError, Message
from services.notifier.grouping import AlertGroup
from services.notifier.routing import AnyChannel
from services.notifier.store import SETTLED, DeliveryStatus, InterruptedClaim, event_trace
from shared.events import Alert, OrderTagged, OrderTaggedAsRead


def _state(delivery: dict[str, Any]) -> str:
    return "settled" if delivery["status"] in SETTLED else str(delivery["status"])


class InMemoryAlertStore:
    def __init__(self) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}

    def _delivery(self, alert_id: str, channel: str) -> dict[str, Any] | None:
        document = self.alerts.get(alert_id)
        if document is None:
            return None
        return next((d for d in document["deliveries"] if d["channel"] == channel), None)

    async def groups_of(self, order_nos: list[str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(d) for d in self.alerts.values() if d["order_no"] in order_nos]

    async def insert(self, documents: list[dict[str, Any]]) -> set[str]:
        refused = set()
        for document in documents:
            if document["alert_id"] in self.alerts:
                refused.add(document["alert_id"])
            else:
                self.alerts[document["alert_id"]] = copy.deepcopy(document)
        return refused

    async def update(self, group: AlertGroup, version: int, notice_due: int | None) -> bool:
        document = self.alerts.get(group.alert_id)
        if document is None or document.get("version") != version:
            return False
        document.update(copy.deepcopy(group.state()), **event_trace(group), version=version + 1)
        if notice_due is not None:
            document["notice_due"] = notice_due
        return True

    async def update_and_tell(
        self, group: AlertGroup, version: int, channels: list[str], as_read: dict[str, Any]
    ) -> bool:
        document = self.alerts.get(group.alert_id)
        if document is None or document.get("version") != version:
            return False
        for channel in channels:
            read = next((d for d in as_read["deliveries"] if d["channel"] == channel), None)
            now = self._delivery(group.alert_id, channel)
            if read is None or now is None or read.get("escalation"):
                return False
            if read.get("revision", 1) >= group.revision or now["revision"] >= group.revision:
                return False
            if _state(read) != _state(now):
                return False
        await self.update(group, version, None)
        for channel in channels:
            self._tell(group.alert_id, channel, group.revision)
        document["notice_due"] = None
        return True

    async def tell(
        self,
        alert_id: str,
        channel: str,
        revision: int,
        *,
        as_read: dict[str, Any] | None = None,
        clearing_notice: bool = False,
    ) -> bool:
        self._tell(alert_id, channel, revision)
        if clearing_notice and self.alerts[alert_id].get("notice_due") == revision:
            self.alerts[alert_id]["notice_due"] = None
            return True
        return False

    def _tell(self, alert_id: str, channel: str, revision: int) -> None:
        delivery = self._delivery(alert_id, channel)
        if delivery is None:
            self.alerts[alert_id]["deliveries"].append(
                {"channel": channel, "status": "pending", "attempts": 0, "escalation": False,
                 "revision": revision}
            )  # fmt: skip
        elif delivery.get("revision", 1) < revision:
            if delivery["status"] == DeliveryStatus.SENDING:
                delivery["follow_up"] = revision
            else:
                delivery.update(status=DeliveryStatus.PENDING.value, revision=revision)

    async def told(self, alert_id: str, revision: int) -> None:
        if self.alerts[alert_id].get("notice_due") == revision:
            self.alerts[alert_id]["notice_due"] = None

    async def notices_due(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(d) for d in self.alerts.values() if d.get("notice_due")]

    async def follow_ups(self) -> list[tuple[str, str, int]]:
        found = []
        for document in self.alerts.values():
            for d in document["deliveries"]:
                if d.get("follow_up") and d["status"] in SETTLED:
                    found.append((document["alert_id"], d["channel"], d["follow_up"]))
                    d.update(status=DeliveryStatus.PENDING.value, revision=d["follow_up"])
                    d["follow_up"] = 0
        return found

    async def get_many(self, alert_ids: list[str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.alerts[i]) for i in alert_ids if i in self.alerts]

    async def mark_published(self, revisions: dict[str, int]) -> None:
        for alert_id, revision in revisions.items():
            document = self.alerts[alert_id]
            document["published_revision"] = max(document["published_revision"], revision)

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
        unless_resolved_untold: bool = False,
    ) -> list[str]:
        claimed = []
        now = datetime.now(UTC)
        for alert_id in alert_ids:
            delivery = self._delivery(alert_id, channel)
            if delivery is None:
                continue
            if (delivery["status"], delivery.get("attempt_id")) == (
                DeliveryStatus.SENDING,
                attempt_id,
            ):  # this attempt's claim, repeated (its reply was lost)
                claimed.append(alert_id)
                continue
            if not self._free(delivery, taking_over):
                continue
            if unless_resolved_untold and self._resolved_untold(alert_id, delivery):
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

    @staticmethod
    def _free(delivery: dict[str, Any], taking_over: str | None) -> bool:
        if taking_over is None:
            return bool(delivery["status"] == DeliveryStatus.PENDING)
        return (delivery["status"], delivery.get("attempt_id")) == (
            DeliveryStatus.SENDING,
            taking_over,
        )

    def _resolved_untold(self, alert_id: str, delivery: dict[str, Any]) -> bool:
        return self.alerts[alert_id]["status"] == "resolved" and not delivery.get("told")

    async def skip_resolved_untold(
        self, alert_ids: list[str], channel: str, *, taking_over: str | None = None
    ) -> int:
        skipped = 0
        for alert_id in alert_ids:
            delivery = self._delivery(alert_id, channel)
            if (
                delivery is not None
                and self._free(delivery, taking_over)
                and self._resolved_untold(alert_id, delivery)
            ):
                delivery.update(
                    status=DeliveryStatus.SKIPPED.value,
                    last_error="resolved before it was sent",
                    updated_at=datetime.now(UTC),
                )
                skipped += 1
        return skipped

    async def traces_of(self, alert_ids: list[str]) -> dict[str, dict[str, str]]:
        return {i: self.alerts[i].get("trace", {}) for i in alert_ids if i in self.alerts}

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

    async def renew_claims(self, alert_ids: list[str], channel: str, attempt_ids: list[str]) -> int:
        renewed = 0
        for alert_id in alert_ids:
            delivery = self._delivery(alert_id, channel)
            if (
                delivery is not None
                and delivery["status"] == DeliveryStatus.SENDING
                and delivery.get("attempt_id") in attempt_ids
            ):
                delivery["claimed_at"] = datetime.now(UTC)
                renewed += 1
        return renewed

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
            if status is DeliveryStatus.DELIVERED:
                delivery["told"] = True
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
            and set(d["kinds"]) & set(kinds)
            and d["created_at"] <= cutoff
        ]

    async def acknowledge(self, alert_id: str, who: str) -> dict[str, Any] | None:
        document = self.alerts.get(alert_id)
        if document is None:
            return None
        if document["status"] != "resolved":
            document["status"] = "acknowledged"
        document.update(acknowledged_by=who, acknowledged_at=datetime.now(UTC))
        document["version"] = document.get("version", 0) + 1
        return copy.deepcopy(document)

    async def mark_escalated(self, alert_id: str) -> bool:
        document = self.alerts[alert_id]
        if document["escalated"]:
            return False
        document["escalated"] = True
        return True


class RecordingSender:
    """A channel's receiving end: every message sent, in order; ``fail`` sends refuse;
    ``unanswered`` sends arrive (they are recorded) but their answer never comes back."""

    def __init__(self, fail: int = 0, unanswered: int = 0) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.fail = fail
        self.unanswered = unanswered

    async def send(self, channel: AnyChannel, message: Message) -> None:
        if self.fail:
            self.fail -= 1
            raise DeliveryError(f"{channel.id}: HTTP 500")
        self.sent.append((channel.id, message))
        if self.unanswered:
            self.unanswered -= 1
            raise DeliveryError(f"{channel.id}: ReadTimeout", maybe_delivered=True)

    def alert_ids(self, channel: str) -> list[str]:
        return [a.alert_id for c, m in self.sent if c == channel for a in m.alerts]


class HeldSender(RecordingSender):
    """A slow channel: each send arrives at once (``arrived``) and is answered on ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[tuple[str, Message]] = []
        self.release = asyncio.Event()

    async def send(self, channel: AnyChannel, message: Message) -> None:
        self.arrived.append((channel.id, message))
        await self.release.wait()
        await super().send(channel, message)


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


class RecordingPublisher:
    def __init__(self, fail: int = 0) -> None:
        self.published: list[str] = []
        self.revisions: list[tuple[str, int]] = []
        self.severities: list[str] = []
        self.fail = fail

    async def __call__(self, alerts: list[Alert]) -> None:
        if self.fail:
            self.fail -= 1
            raise KafkaConnectionError("kafka down")
        self.published.extend(a.alert_id for a in alerts)
        self.revisions.extend((a.alert_id, a.revision) for a in alerts)
        self.severities.extend(a.severity.value for a in alerts)


def as_read(event: OrderTagged) -> OrderTaggedAsRead:
    """A tagged event as the notifier's consumer decodes it from its JSON."""
    return OrderTaggedAsRead.model_validate_json(event.model_dump_json())

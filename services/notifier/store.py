"""Alerts in MongoDB: exactly one per order and team (unique alert_id), with their deliveries.

Each alert holds one delivery per channel. A delivery moves ``pending`` → ``sending`` (claimed
with an attempt id *before* anything is sent) → ``delivered`` | ``failed``; a claim that outlives
its lease was interrupted (the process died mid-send: a live one renews its claims' leases while
it holds them, ``renew_claims``) and is settled by the delivery sweeper:
sent again under the same idempotency key, or marked ``uncertain`` (see docs/notifier.md).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.notifier.grouping import AlertGroup
from shared.mongo import DUPLICATE_KEY, SCAN_BATCH
from shared.stored_order import applied_event_ids, currency_of, order_as_ingested
from shared.stored_tags import ReasonTemplates, readable_tags
from shared.tracing import order_trace

PAGE_SIZE_MAX = 500


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not claimed: nothing was sent
    SENDING = "sending"  # claimed by an attempt id: may or may not have reached the channel
    DELIVERED = "delivered"
    FAILED = "failed"  # every retry refused
    UNCERTAIN = "uncertain"  # interrupted mid-send on a channel without idempotency: not resent
    SKIPPED = "skipped"  # resolved before it was sent: nobody needs to hear of it


# a delivery in one of these may be told again (a later revision of its alert)
SETTLED = [
    DeliveryStatus.DELIVERED.value,
    DeliveryStatus.FAILED.value,
    DeliveryStatus.UNCERTAIN.value,
    DeliveryStatus.SKIPPED.value,
]


@dataclass(frozen=True, slots=True)
class InterruptedClaim:
    """A claim whose process stopped answering: the alerts it held, as they were claimed."""

    channel: str
    attempt_id: str
    idempotency_key: str | None
    escalation: bool
    alerts: list[dict[str, Any]]


def _on(channel: str, name: str = "d") -> list[dict[str, Any]]:
    """The array filter ``name`` naming a channel's delivery (an alert has one per channel; the
    query says which state it must be in). Two faults of the local MongoDB-wire server shape
    this: the positional ``$`` after ``$elemMatch`` fails on elements with fields the query does
    not name, and array filters are re-checked after each field is set (so a filter on
    ``status`` would stop after the first ``$set``)."""
    return [{f"{name}.channel": channel}]


def _held(taking_over: str | None) -> dict[str, Any]:
    """A delivery free to claim: pending, or (``taking_over``) held by an interrupted attempt."""
    if taking_over is None:
        return {"status": DeliveryStatus.PENDING.value}
    return {"status": DeliveryStatus.SENDING.value, "attempt_id": taking_over}


def _delivery(channel: str, escalation: bool = False, revision: int = 1) -> dict[str, Any]:
    return {
        "channel": channel,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "escalation": escalation,
        "revision": revision,  # the alert's revision this delivery is to tell
    }


def _telling_moves(
    channel: str, revision: int, name: str = "d"
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The writes that make a channel's delivery tell ``revision``, by the delivery's state
    (each conditional on that state, so at most one applies): none yet, settled, pending,
    mid-send. ``name``: the array filter naming the delivery (``_on``)."""
    older = {"channel": channel, "revision": {"$lt": revision}, "escalation": False}
    d = f"deliveries.$[{name}]"
    return {
        "none": (
            {"deliveries.channel": {"$ne": channel}},
            {"$push": {"deliveries": _delivery(channel, revision=revision)}},
        ),
        "settled": (
            {"deliveries": {"$elemMatch": {**older, "status": {"$in": SETTLED}}}},
            {"$set": {f"{d}.status": DeliveryStatus.PENDING.value, f"{d}.revision": revision}},
        ),
        "pending": (
            {"deliveries": {"$elemMatch": {**older, "status": DeliveryStatus.PENDING.value}}},
            {"$set": {f"{d}.revision": revision}},
        ),
        "sending": (
            {"deliveries": {"$elemMatch": {**older, "status": DeliveryStatus.SENDING.value}}},
            {"$set": {f"{d}.follow_up": revision}},
        ),
    }


def _expected_move(document: dict[str, Any] | None, channel: str, revision: int) -> str | None:
    """The move the channel's delivery in ``document`` (as read) calls for; None when unknown
    or nothing is to be done."""
    if document is None:
        return None
    delivery = next((d for d in document.get("deliveries", []) if d["channel"] == channel), None)
    if delivery is None:
        return "none"
    if delivery.get("escalation") or delivery.get("revision", 1) >= revision:
        return None
    if delivery["status"] in SETTLED:
        return "settled"
    return str(delivery["status"])


def event_trace(group: AlertGroup) -> dict[str, Any]:
    """The trace context of the order event handled now: the alert's deliveries, sent later,
    join that event's trace (shared.tracing.DeliverySpans); nothing when tracing is off."""
    trace = order_trace(group.order_no)
    return {"trace": trace} if trace else {}


def new_document(group: AlertGroup, channels: list[str]) -> dict[str, Any]:
    return {
        **group.state(),
        **event_trace(group),
        "version": 1,  # each stored change of the alert's state counts one (optimistic writes)
        "escalated": False,
        "published_revision": 0,  # on the alerts topic; raised once Kafka acknowledged it
        "deliveries": [_delivery(c, revision=group.revision) for c in channels],
    }


class AlertStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.alerts = database["alerts"]
        self.attempts = database["delivery_attempts"]
        self.orders = database["orders"]  # the tagger's, read for the detail view

    async def ensure_indexes(self) -> None:
        await self.alerts.create_index([("alert_id", ASCENDING)], unique=True)
        await self.alerts.create_index([("order_no", ASCENDING)])
        await self.alerts.create_index([("status", ASCENDING), ("created_at", DESCENDING)])
        await self.alerts.create_index([("deliveries.status", ASCENDING)])
        # the sweeps' queries for what is due (notices_due, follow_ups): without these each
        # read every alert, every few seconds, on a MongoDB as on the local server
        await self.alerts.create_index([("notice_due", ASCENDING)])
        await self.alerts.create_index([("deliveries.follow_up", ASCENDING)])
        await self.attempts.create_index([("alert_ids", ASCENDING), ("at", DESCENDING)])

    async def ping(self) -> None:
        await self.alerts.database.command("ping")

    async def groups_of(self, order_nos: list[str]) -> list[dict[str, Any]]:
        """Every alert of these orders (each order has at most one per team)."""
        cursor = self.alerts.find({"order_no": {"$in": order_nos}}, {"_id": 0})
        return await cursor.to_list(None)

    async def insert(self, documents: list[dict[str, Any]]) -> set[str]:
        """Store new alerts in one round trip; returns the ids another writer stored first."""
        if not documents:
            return set()
        refused: set[str] = set()
        try:
            await self.alerts.insert_many([dict(d) for d in documents], ordered=False)
        except BulkWriteError as error:
            for failure in error.details["writeErrors"]:
                if failure["code"] != DUPLICATE_KEY:
                    raise
                refused.add(documents[failure["index"]]["alert_id"])
        return refused

    async def update(self, group: AlertGroup, version: int, notice_due: int | None) -> bool:
        """Store the alert's new state if nobody changed it since ``version`` was read; with
        ``notice_due``, the revision its channels must still be told of (cleared once told)."""
        fields = {**group.state(), **event_trace(group), "version": version + 1}
        if notice_due is not None:
            fields["notice_due"] = notice_due
        result = await self.alerts.update_one(
            {"alert_id": group.alert_id, "version": version}, {"$set": fields}
        )
        return result.modified_count == 1

    async def update_and_tell(
        self, group: AlertGroup, version: int, channels: list[str], as_read: dict[str, Any]
    ) -> bool:
        """Store the alert's new state and make these channels' deliveries tell its revision,
        in one write, if nobody changed the alert since ``version`` and its deliveries are as
        ``as_read`` shows them (nothing is then left due: no ``notice_due``). False when
        either moved on, or a channel needs a delivery added: the caller then stores the
        change with ``update`` and tells the channels one by one."""
        query: dict[str, Any] = {"alert_id": group.alert_id, "version": version}
        fields = {**group.state(), **event_trace(group), "version": version + 1}
        fields["notice_due"] = None
        held: list[dict[str, Any]] = []
        filters: list[dict[str, Any]] = []
        for number, channel in enumerate(channels):
            move = _expected_move(as_read, channel, group.revision)
            if move not in ("settled", "pending", "sending"):
                return False  # a new delivery ($push) cannot share a write with these
            name = f"d{number}"
            condition, update = _telling_moves(channel, group.revision, name)[move]
            held.append(condition)
            fields.update(update["$set"])
            filters.extend(_on(channel, name))
        if held:
            query["$and"] = held
        result = await self.alerts.update_one(
            query, {"$set": fields}, array_filters=filters or None
        )
        return result.modified_count == 1

    async def tell(
        self,
        alert_id: str,
        channel: str,
        revision: int,
        *,
        as_read: dict[str, Any] | None = None,
        clearing_notice: bool = False,
    ) -> bool:
        """Make the channel's delivery tell ``revision``: a new delivery, a settled one sent
        again, a pending one sending the newer state, or one mid-send followed up once it
        settles (the sweeper). Idempotent: a delivery already at ``revision`` is left alone.

        ``as_read``: the alert as the caller read it; the move its delivery calls for is tried
        first, so one write does it when nothing moved since. ``clearing_notice``: that write
        also records ``revision`` told (``told``) when it is still the one due; returns True
        when it did (else the caller calls ``told``)."""
        moves = _telling_moves(channel, revision)
        expected = _expected_move(as_read, channel, revision)
        if expected is not None:
            query, update = moves[expected]
            if clearing_notice:
                query = {**query, "notice_due": revision}
                update = {**update, "$set": {**update.get("$set", {}), "notice_due": None}}
            if await self._move(alert_id, channel, query, update):
                return clearing_notice
        for _ in range(4):  # each miss means the delivery moved on meanwhile
            for query, update in moves.values():
                if await self._move(alert_id, channel, query, update):
                    return False
            current = await self.alerts.count_documents(
                {
                    "alert_id": alert_id,
                    "deliveries": {
                        "$elemMatch": {"channel": channel, "revision": {"$gte": revision}}
                    },
                }
            )
            if current:
                return False
        return False

    async def _move(
        self, alert_id: str, channel: str, query: dict[str, Any], update: dict[str, Any]
    ) -> bool:
        pushing = "$push" in update
        result = await self.alerts.update_one(
            {"alert_id": alert_id, **query},
            update,
            array_filters=None if pushing else _on(channel),
        )
        return result.modified_count == 1

    async def told(self, alert_id: str, revision: int) -> None:
        await self.alerts.update_one(
            {"alert_id": alert_id, "notice_due": revision}, {"$set": {"notice_due": None}}
        )

    async def notices_due(self) -> list[dict[str, Any]]:
        """Alerts stored with a change their channels were not yet told of (a crash between)."""
        cursor = self.alerts.find({"notice_due": {"$gt": 0}}, {"_id": 0})
        return await cursor.to_list(None)

    async def follow_ups(self) -> list[tuple[str, str, int]]:
        """Deliveries that were mid-send when a newer revision came: once settled, they are
        made pending for that revision. Returns (alert id, channel, revision) made pending."""
        cursor = self.alerts.find(
            {"deliveries": {"$elemMatch": {"follow_up": {"$gt": 0}, "status": {"$in": SETTLED}}}},
            {"_id": 0, "alert_id": 1, "deliveries": 1},
        )
        found = []
        async for document in cursor:
            for delivery in document["deliveries"]:
                revision = delivery.get("follow_up") or 0
                if revision and delivery["status"] in SETTLED:
                    result = await self.alerts.update_one(
                        {
                            "alert_id": document["alert_id"],
                            "deliveries": {
                                "$elemMatch": {
                                    "channel": delivery["channel"],
                                    "follow_up": revision,
                                    "status": {"$in": SETTLED},
                                }
                            },
                        },
                        {
                            "$set": {
                                "deliveries.$[d].status": DeliveryStatus.PENDING.value,
                                "deliveries.$[d].revision": revision,
                                "deliveries.$[d].follow_up": 0,
                            }
                        },
                        array_filters=_on(delivery["channel"]),
                    )
                    if result.modified_count:
                        found.append((document["alert_id"], delivery["channel"], revision))
        return found

    async def get_many(self, alert_ids: list[str]) -> list[dict[str, Any]]:
        cursor = self.alerts.find({"alert_id": {"$in": alert_ids}}, {"_id": 0})
        return await cursor.to_list(None)

    async def mark_published(self, revisions: dict[str, int]) -> None:
        """The alerts topic has these revisions (never lowers what is recorded). One round trip:
        the shorter the time between Kafka's acknowledgement and this record, the fewer
        revisions a crash in between publishes twice."""
        if revisions:
            await self.alerts.bulk_write(
                [
                    UpdateOne({"alert_id": alert_id}, {"$max": {"published_revision": revision}})
                    for alert_id, revision in revisions.items()
                ],
                ordered=False,
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
        unless_resolved_untold: bool = False,
    ) -> list[str]:
        """Claim the channel's deliveries of these alerts for ``attempt_id``, before sending:
        pending ones, or (``taking_over``) those an interrupted attempt held; with
        ``unless_resolved_untold``, not those of alerts that resolved before the channel heard
        of them (``skip_resolved_untold``). Returns the ids claimed (one write, no read, when
        it claimed them all); another process or attempt may have claimed the rest. Safe to
        repeat: a claim whose reply was lost (MongoDB went down after applying it) returns,
        when tried again, what ``attempt_id`` holds, instead of leaving it ``sending`` for a
        lease."""
        query: dict[str, Any] = {
            "alert_id": {"$in": alert_ids},
            "deliveries": {"$elemMatch": {"channel": channel, **_held(taking_over)}},
        }
        if unless_resolved_untold:
            query["$or"] = [
                {"status": {"$ne": "resolved"}},
                {"deliveries": {"$elemMatch": {"channel": channel, "told": True}}},
            ]
        now = datetime.now(UTC)
        result = await self.alerts.update_many(
            query,
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
        return await self._held_by(alert_ids, channel, attempt_id)

    async def skip_resolved_untold(
        self, alert_ids: list[str], channel: str, *, taking_over: str | None = None
    ) -> int:
        """Settle ``skipped``, unclaimed, the channel's deliveries (pending, or held by
        ``taking_over``) of these alerts that resolved before the channel heard of them: nobody
        needs a raise and a resolve at once. Returns how many."""
        result = await self.alerts.update_many(
            {
                "alert_id": {"$in": alert_ids},
                "status": "resolved",
                "deliveries": {
                    "$elemMatch": {"channel": channel, **_held(taking_over), "told": {"$ne": True}}
                },
            },
            {
                "$set": {
                    "deliveries.$[d].status": DeliveryStatus.SKIPPED.value,
                    "deliveries.$[d].last_error": "resolved before it was sent",
                    "deliveries.$[d].updated_at": datetime.now(UTC),
                }
            },
            array_filters=_on(channel),
        )
        return result.modified_count

    async def traces_of(self, alert_ids: list[str]) -> dict[str, dict[str, str]]:
        """The trace context stored with each alert (read only while tracing is on)."""
        cursor = self.alerts.find(
            {"alert_id": {"$in": alert_ids}}, {"_id": 0, "alert_id": 1, "trace": 1}
        )
        return {d["alert_id"]: d.get("trace", {}) async for d in cursor}

    async def _held_by(self, alert_ids: list[str], channel: str, attempt_id: str) -> list[str]:
        cursor = self.alerts.find(
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

    async def renew_claims(self, alert_ids: list[str], channel: str, attempt_ids: list[str]) -> int:
        """The claim heartbeat: push the lease of the channel's deliveries still held by these
        attempts (``sending`` under one of them) forward to now. A claim another process took
        over or an outcome already stored is left alone. Returns the deliveries renewed."""
        now = datetime.now(UTC)
        result = await self.alerts.update_many(
            {
                "alert_id": {"$in": alert_ids},
                "deliveries": {
                    "$elemMatch": {
                        "channel": channel,
                        "attempt_id": {"$in": attempt_ids},
                        "status": DeliveryStatus.SENDING.value,
                    }
                },
            },
            {"$set": {"deliveries.$[d].claimed_at": now}},
            array_filters=_on(channel),
        )
        return result.modified_count

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
        if status is DeliveryStatus.DELIVERED:
            update["$set"]["deliveries.$[d].told"] = True
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
        """Claims not renewed since ``claimed_before``: their process died (or hung) between
        claim and outcome (``claimed_at`` is the claim's time or its last renewal)."""
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

    async def order_of(
        self, order_no: str, templates: ReasonTemplates | None = None
    ) -> dict[str, Any] | None:
        """The tagger's order, its tags in full (stored compact: ``shared/stored_tags.py``),
        their reasons rendered by ``templates`` (``reasons.RuleReasons``; without them a rule
        tag's reason names its rule, version and values)."""
        document = await self.orders.find_one({"order_no": order_no}, {"_id": 0})
        return None if document is None else _shown_order(document, templates)

    async def order_in_two_words(
        self, order_no: str, templates: ReasonTemplates | None, own: ReasonTemplates | None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The order as ``order_of`` gives it with ``templates``, and its tags with their
        reasons rendered by ``own`` (the rules' own words, which an alert quotes), from one
        read of the order."""
        document = await self.orders.find_one({"order_no": order_no}, {"_id": 0})
        if document is None:
            return None, []
        own_tags = readable_tags(document, own)  # before the document is reshaped
        return _shown_order(document, templates), own_tags

    async def acknowledge(self, alert_id: str, who: str) -> dict[str, Any] | None:
        """Who took it and when; an open alert becomes ``acknowledged`` (a resolved one stays
        resolved). The version moves on, so a consumer that read the alert before re-reads it
        instead of writing its old status back."""
        by = {"acknowledged_by": who, "acknowledged_at": datetime.now(UTC)}
        for query, fields in (
            ({"status": {"$ne": "resolved"}}, {"status": "acknowledged", **by}),
            ({"status": "resolved"}, by),
        ):
            found = await self.alerts.find_one_and_update(
                {"alert_id": alert_id, **query},
                {"$set": fields, "$inc": {"version": 1}},
                projection={"_id": 0},
                return_document=ReturnDocument.AFTER,
            )
            if found is not None:
                return found
        return None

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
                "kinds": {"$in": kinds},
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


def _shown_order(document: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A stored order reshaped for the page (``AlertStore.order_of``)."""
    # the tags first: a reason may quote the order's facts (its customer, its figures)
    document["tags"] = readable_tags(document, templates)
    document["order"] = order_as_ingested(document)
    document["applied_events"] = applied_event_ids(document)
    document["currency"] = currency_of(document)
    document["order"].pop("customer", None)  # not the notifier's to show
    for stored_only in ("tags_at", "tags_rule_version", "tag_keys", "first_at", "figures"):
        document.pop(stored_only, None)
    return document

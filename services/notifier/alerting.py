"""The alerting use case: tagged orders in, alerts stored once, published (at least once),
delivered, shown live."""

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.notifier.delivery import Dispatcher, alert_of
from services.notifier.grouping import (
    AlertGroup,
    Notice,
    alert_id_for,
    evolve,
    teams_for,
    tells,
)
from services.notifier.live import LiveFeed
from services.notifier.metrics import ALERTS_RAISED
from services.notifier.routing import Routing
from services.notifier.store import AlertStore, DeliveryStatus, new_document
from shared.events import Alert, OrderTaggedAsRead

log = structlog.get_logger("notifier")
PublishAlerts = Callable[[list[Alert]], Awaitable[None]]


MAX_WRITE_ROUNDS = 8  # another writer of the same alerts (a rebalance overlap): read, retry


@dataclass
class _Batch:
    """The alerts of a batch's orders as read, and what the batch did to them."""

    documents: dict[str, dict[str, Any]]  # alert id -> stored document (as read)
    groups: dict[str, AlertGroup] = field(default_factory=dict)  # alert id -> new state
    # each stored document's state, read once (None: an alert of the earlier model), and the
    # teams with an alert on each order, stored or raised by the batch so far
    stored_groups: dict[str, AlertGroup | None] = field(default_factory=dict)
    teams_by_order: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notices: dict[str, Notice] = field(default_factory=dict)  # the latest notice per alert
    created: set[str] = field(default_factory=set)
    new_documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # as inserted
    told: dict[str, list[str]] = field(default_factory=dict)  # alert id -> channels told
    alerts: dict[str, Alert] = field(default_factory=dict)  # as told and published (``alert``)

    def alert(self, alert_id: str) -> Alert:
        """A changed alert as people and other systems get it, built once a batch."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            alert = self.alerts[alert_id] = self.groups[alert_id].alert()
        return alert

    def __post_init__(self) -> None:
        for alert_id, document in self.documents.items():
            group = self.stored_groups[alert_id] = _group_of(document)
            if group is not None:
                self.teams_by_order[group.order_no].add(group.team)


class Alerting:
    def __init__(
        self,
        routing: Routing,
        store: AlertStore,
        dispatcher: Dispatcher,
        live: LiveFeed,
        order_url_base: str,
        publish_alerts: PublishAlerts,
    ) -> None:
        self._routing = routing
        self._teams = routing.teams()
        self._channels = {channel.id: channel for channel in routing.channels}
        self._store = store
        self._dispatcher = dispatcher
        self._live = live
        self._order_url_base = order_url_base
        self._publish_alerts = publish_alerts

    async def handle(self, events: Sequence[OrderTaggedAsRead]) -> int:
        """Raise, update and resolve the alerts these tagged orders call for; returns how many
        changed in a way people are told of. Safe to run again on the same events (Kafka
        redelivers): each event applies once per alert, and what a failed run left untold or
        unpublished is done."""
        if not events:
            return 0
        order_nos = sorted({event.order_no for event in events})
        for _ in range(MAX_WRITE_ROUNDS):
            batch = _Batch({d["alert_id"]: d for d in await self._store.groups_of(order_nos)})
            self._apply(batch, events)
            conflicts = await self._save(batch)
            if not conflicts:
                break
            log.info("alert_write_conflict", alert_ids=sorted(conflicts))
        else:
            raise AlertWriteConflict(sorted(conflicts))
        await self._tell(batch)
        await self._publish(batch)
        return sum(notice is not Notice.NONE for notice in batch.notices.values())

    def _apply(self, batch: _Batch, events: Sequence[OrderTaggedAsRead]) -> None:
        for event in events:  # in partition order: one order's events in the order they happened
            # the teams the event calls, and those with an alert on the order (a reason may
            # have stopped holding)
            teams = set(teams_for(event, self._routing)) | batch.teams_by_order[event.order_no]
            for team in sorted(teams):
                alert_id = alert_id_for(event.order_no, team)
                stored = batch.documents.get(alert_id)
                stored_group = batch.stored_groups.get(alert_id)
                if stored is not None and stored_group is None:
                    continue  # an alert of the earlier model under the same id: left as it is
                current = batch.groups.get(alert_id) or stored_group
                evolution = evolve(
                    current,
                    event,
                    team,
                    self._teams.get(team, []),
                    self._order_url_base,
                    now=datetime.now(UTC),
                )
                if evolution is None:
                    continue
                batch.groups[alert_id] = evolution.group
                batch.teams_by_order[event.order_no].add(team)
                if evolution.created:
                    batch.created.add(alert_id)
                if evolution.notice is not Notice.NONE or alert_id not in batch.notices:
                    batch.notices[alert_id] = evolution.notice

    async def _save(self, batch: _Batch) -> set[str]:
        """One insert for the new alerts, one conditional update per changed one; returns the
        ids another writer changed meanwhile (the batch is then read and applied again)."""
        batch.new_documents = {
            alert_id: new_document(group, self._channels_for(group, Notice.RAISED, {}))
            for alert_id, group in batch.groups.items()
            if alert_id in batch.created
        }
        conflicts = await self._store.insert(list(batch.new_documents.values()))
        changed = [
            (alert_id, group)
            for alert_id, group in batch.groups.items()
            if alert_id not in batch.created
        ]
        batch.told = {}
        stored = await asyncio.gather(
            *(self._store_change(batch, alert_id, group) for alert_id, group in changed)
        )
        refused = {alert_id for (alert_id, _), ok in zip(changed, stored, strict=True) if not ok}
        return conflicts | refused

    async def _store_change(self, batch: _Batch, alert_id: str, group: AlertGroup) -> bool:
        """A changed alert's conditional write; a change people must hear of tells its
        channels in the same write when its deliveries are as read (else it is stored with
        ``notice_due`` and told after, ``tell_channels``)."""
        document = batch.documents[alert_id]
        version = document.get("version", 0)
        notice = batch.notices.get(alert_id, Notice.NONE)
        if notice is Notice.NONE:
            return await self._store.update(group, version, None)
        channels = self._channels_for(group, notice, document)
        if await self._store.update_and_tell(group, version, channels, document):
            batch.told[alert_id] = channels
            return True
        return await self._store.update(group, version, group.revision)

    async def _tell(self, batch: _Batch) -> None:
        """Changes people must see go to the alert's channels; the live page sees every one."""
        stored_due = [d for d in batch.documents.values() if d.get("notice_due")]
        created = [alert_id for alert_id in batch.groups if alert_id in batch.created]
        for alert_id in created:
            self._raised(batch.groups[alert_id], batch.alert(alert_id))
        # the page hears of a batch's changes in one Redis call each, not one per alert
        await self._live.publish_many("created", [batch.new_documents[a] for a in created])
        updated = []
        for alert_id, group in batch.groups.items():
            if alert_id in batch.created:
                continue
            notice = batch.notices.get(alert_id, Notice.NONE)
            if alert_id in batch.told:
                self._announce(group, notice, batch.told[alert_id])
            elif notice is not Notice.NONE:
                await self.tell_channels(group, notice, batch.documents[alert_id])
            updated.append(group.state())
        await self._live.publish_many("updated", updated)
        for document in stored_due:  # a run that stored a change and stopped before telling
            if document["alert_id"] not in batch.groups:
                await self.tell_channels(_group_of(document), None, document)  # type: ignore[arg-type]
        for document in batch.documents.values():
            # deliveries a run stored and stopped before queueing (MongoDB lost the reply to
            # the insert: the batch came back, its events applied already, nothing new to tell)
            # go now, not once the sweeper's lease ran out
            changed = batch.groups.get(document["alert_id"])
            self._dispatcher.enqueue_pending(document, changed.alert() if changed else None)

    async def tell_channels(
        self, group: AlertGroup, notice: Notice | None, document: dict[str, Any]
    ) -> None:
        notice = notice or _notice_of(group)
        channels = self._channels_for(group, notice, document)
        told = False
        for number, channel in enumerate(channels, 1):
            # as read, each channel's delivery usually takes one write; the last one's also
            # records the revision told
            told = await self._store.tell(
                group.alert_id,
                channel,
                group.revision,
                as_read=document,
                clearing_notice=number == len(channels),
            )
        if not told:
            await self._store.told(group.alert_id, group.revision)
        self._announce(group, notice, channels)

    def _announce(self, group: AlertGroup, notice: Notice, channels: list[str]) -> None:
        """The change is stored and its channels' deliveries tell it: queue them."""
        self._dispatcher.enqueue(group.alert(), channels)
        log.info(
            "alert_changed",
            alert_id=group.alert_id,
            notice=notice.value,
            severity=group.severity.value,
            revision=group.revision,
            channels=channels,
        )

    def _raised(self, group: AlertGroup, alert: Alert) -> None:
        channels = self._channels_for(group, Notice.RAISED, {})
        log.info(
            "alert_raised",
            alert_id=group.alert_id,
            order_no=group.order_no,
            kind=group.kind.value,
            severity=group.severity.value,
            channels=channels,
        )
        ALERTS_RAISED.labels(group.kind.value, group.severity.value).inc()
        self._dispatcher.enqueue(alert, channels)

    def _channels_for(
        self, group: AlertGroup, notice: Notice, document: dict[str, Any]
    ) -> list[str]:
        """The channels of the team's routes behind this alert that this change goes to."""
        heard = {
            d["channel"]
            for d in document.get("deliveries", [])
            if not d.get("escalation")
            and (d.get("told") or d["status"] in (DeliveryStatus.PENDING, DeliveryStatus.SENDING))
        }
        routes = {reason.route_id for reason in group.causes}
        names = dict.fromkeys(
            name
            for route in self._teams.get(group.team, [])
            if route.id in routes
            for name in route.channels
        )
        return [
            name
            for name in names
            if name in self._channels
            and tells(self._channels[name], notice, group.severity, name in heard)
        ]

    async def _publish(self, batch: _Batch) -> None:
        """Each revision once on the alerts topic for other systems (MongoDB is the record);
        what an earlier run stored but did not publish goes too, as stored. The record of what
        Kafka took (``published_revision``) is one more write per alert, about a fifth of the
        store's work per alert; the ways found to do without it sent a revision again with
        what changed since (docs/performance-log.md, tenth pass)."""
        due = {
            alert_id: batch.alert(alert_id)
            for alert_id in batch.groups
            if batch.notices.get(alert_id, Notice.NONE) is not Notice.NONE
        }
        for alert_id, document in batch.documents.items():
            stored = batch.stored_groups[alert_id]
            if (
                alert_id not in due
                and stored is not None
                and document.get("published_revision", 0) < stored.revision
            ):
                due[alert_id] = stored.alert()
        if not due:
            return
        await self._publish_alerts(list(due.values()))
        await self._store.mark_published({a: alert.revision for a, alert in due.items()})

    async def resume_pending(self) -> None:
        """At start: changes stored but not told are told, deliveries nobody holds are queued,
        interrupted claims settled."""
        await self.tell_due()
        await self._dispatcher.sweep(at_start=True)

    async def tell_due(self) -> None:
        for document in await self._store.notices_due():
            group = _group_of(document)
            if group is not None:
                await self.tell_channels(group, None, document)

    async def escalate_due(self) -> int:
        escalation = self._routing.escalation
        cutoff = datetime.now(UTC) - timedelta(minutes=escalation.after_minutes)
        count = 0
        for document in await self._store.due_for_escalation(cutoff, list(escalation.kinds)):
            if not await self._store.mark_escalated(document["alert_id"]):
                continue
            alert = alert_of(document)
            await self._store.add_deliveries(alert.alert_id, escalation.channels, escalation=True)
            self._dispatcher.enqueue(alert, escalation.channels, escalation=True)
            await self._live.publish("escalated", {**document, "escalated": True})
            log.warning("alert_escalated", alert_id=alert.alert_id)
            count += 1
        return count

    async def watch_escalations(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.tell_due()
                await self.escalate_due()
            except Exception:  # a passing store error must not end the watch
                log.exception("escalation_check_failed")


class AlertWriteConflict(Exception):
    """Other writers kept changing these alerts; the batch is handed back to Kafka."""


def _group_of(document: dict[str, Any] | None) -> AlertGroup | None:
    """A stored alert as its state; None for a document of the old model (one per order and
    kind, no reasons), which the new model leaves as it is."""
    if document is None or "causes" not in document:
        return None
    return AlertGroup.model_validate(document)


def _notice_of(group: AlertGroup) -> Notice:
    """The notice a stored, untold revision stands for (read back from its history)."""
    for change in reversed(group.history):
        if change.change in {n.value for n in Notice}:
            return Notice(change.change)
    return Notice.RAISED

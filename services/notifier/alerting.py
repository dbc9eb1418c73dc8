"""The alerting use case: tagged orders in, alerts stored once, delivered, shown live."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis

from services.notifier.delivery import Dispatcher
from services.notifier.live import LiveFeed
from services.notifier.routing import Routing, alerts_for
from services.notifier.store import AlertStore
from shared.events import Alert, OrderTagged

log = structlog.get_logger("notifier")
SEEN_TTL_S = 7 * 24 * 3600
PublishAlerts = Callable[[list[Alert]], Awaitable[None]]


class Alerting:
    def __init__(
        self,
        routing: Routing,
        store: AlertStore,
        dispatcher: Dispatcher,
        live: LiveFeed,
        redis: Redis,
        order_url_base: str,
        publish_alerts: PublishAlerts,
    ) -> None:
        self._routing = routing
        self._store = store
        self._dispatcher = dispatcher
        self._live = live
        self._redis = redis
        self._order_url_base = order_url_base
        self._publish_alerts = publish_alerts

    async def handle(self, events: Sequence[OrderTagged]) -> int:
        """Raise the alerts these tagged orders call for; returns how many were new."""
        candidates = [
            pair
            for event in events
            for pair in alerts_for(event, self._routing, self._order_url_base)
        ]
        if not candidates:
            return 0
        # Fast path: alerts already raised are remembered in Redis (set only after MongoDB has
        # them, so a crash in between never loses one); MongoDB's unique alert_id decides.
        seen = await self._redis.mget([f"alert:{a.alert_id}" for a, _ in candidates])
        unseen = [pair for pair, known in zip(candidates, seen, strict=True) if not known]
        if not unseen:
            return 0
        documents = await self._store.insert_new(unseen)  # one round trip; repeats come back None
        pipe = self._redis.pipeline(transaction=False)
        for alert, _ in unseen:
            pipe.set(f"alert:{alert.alert_id}", 1, ex=SEEN_TTL_S)
        await pipe.execute()
        new = [(pair, doc) for pair, doc in zip(unseen, documents, strict=True) if doc is not None]
        await self._live.publish_many("created", [doc for _, doc in new])
        # for other systems: each new alert once on the alerts topic (MongoDB holds the record)
        await self._publish_alerts([alert for (alert, _), _ in new])
        for (alert, route), _ in new:
            log.info(
                "alert_raised",
                alert_id=alert.alert_id,
                order_no=alert.order_no,
                kind=alert.kind.value,
                severity=alert.severity.value,
            )
            self._dispatcher.enqueue(alert, route.channels)
        return len(new)

    async def resume_pending(self) -> None:
        """After a restart: deliveries not yet done are queued again."""
        for document in await self._store.pending_deliveries():
            alert = Alert.model_validate({k: document[k] for k in Alert.model_fields})
            channels = [d["channel"] for d in document["deliveries"] if d["status"] == "pending"]
            self._dispatcher.enqueue(alert, [c for c in channels if c in self._dispatcher.workers])

    async def escalate_due(self) -> int:
        escalation = self._routing.escalation
        cutoff = datetime.now(UTC) - timedelta(minutes=escalation.after_minutes)
        count = 0
        for document in await self._store.due_for_escalation(cutoff, list(escalation.kinds)):
            if not await self._store.mark_escalated(document["alert_id"]):
                continue
            alert = Alert.model_validate({k: document[k] for k in Alert.model_fields})
            await self._store.add_deliveries(alert.alert_id, escalation.channels)
            self._dispatcher.enqueue(alert, escalation.channels, escalation=True)
            await self._live.publish("escalated", {**document, "escalated": True})
            log.warning("alert_escalated", alert_id=alert.alert_id)
            count += 1
        return count

    async def watch_escalations(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.escalate_due()
            except Exception:  # a passing store error must not end the watch
                log.exception("escalation_check_failed")

    async def notify(self, change: str, data: dict[str, Any]) -> None:
        await self._live.publish(change, data)

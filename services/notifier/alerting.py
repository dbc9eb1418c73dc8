"""The alerting use case: tagged orders in, alerts stored once, published once, delivered, shown
live."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from redis.asyncio import Redis

from services.notifier.delivery import Dispatcher, alert_of
from services.notifier.live import LiveFeed
from services.notifier.metrics import ALERTS_RAISED
from services.notifier.routing import Route, Routing, alerts_for
from services.notifier.store import AlertStore
from shared.errors import REDIS_OUTAGES
from shared.events import Alert, OrderTagged

log = structlog.get_logger("notifier")
SEEN_TTL_S = 7 * 24 * 3600
PublishAlerts = Callable[[list[Alert]], Awaitable[None]]


class SeenAlerts(Protocol):
    """The fast path's memory of raised alerts (Redis); MongoDB's unique alert_id decides."""

    async def known(self, alert_ids: list[str]) -> list[bool]: ...
    async def remember(self, alert_ids: list[str]) -> None: ...


class RedisSeenAlerts:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def known(self, alert_ids: list[str]) -> list[bool]:
        found = await self._redis.mget([f"alert:{alert_id}" for alert_id in alert_ids])
        return [bool(value) for value in found]

    async def remember(self, alert_ids: list[str]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for alert_id in alert_ids:
            pipe.set(f"alert:{alert_id}", 1, ex=SEEN_TTL_S)
        await pipe.execute()


class Alerting:
    def __init__(
        self,
        routing: Routing,
        store: AlertStore,
        dispatcher: Dispatcher,
        live: LiveFeed,
        seen: SeenAlerts,
        order_url_base: str,
        publish_alerts: PublishAlerts,
    ) -> None:
        self._routing = routing
        self._store = store
        self._dispatcher = dispatcher
        self._live = live
        self._seen = seen
        self._order_url_base = order_url_base
        self._publish_alerts = publish_alerts

    async def handle(self, events: Sequence[OrderTagged]) -> int:
        """Raise the alerts these tagged orders call for; returns how many were new. Safe to
        run again on the same events (Kafka redelivers): nothing is stored, published or
        delivered twice, and what a failed run left unpublished is published."""
        # one per alert id: a batch may hold the same event twice (Kafka redelivery)
        candidates = list(
            {
                alert.alert_id: (alert, route)
                for event in events
                for alert, route in alerts_for(event, self._routing, self._order_url_base)
            }.values()
        )
        if not candidates:
            return 0
        unseen = await self._unseen(candidates)
        if not unseen:
            return 0
        documents = await self._store.insert_new(unseen)  # one round trip; repeats come back None
        new = [pair for pair, doc in zip(unseen, documents, strict=True) if doc is not None]
        repeated = [
            alert.alert_id for (alert, _), doc in zip(unseen, documents, strict=True) if doc is None
        ]
        unpublished = await self._store.unpublished(repeated) if repeated else []
        await self._live.publish_many("created", [doc for doc in documents if doc is not None])
        # for other systems: each new alert once on the alerts topic (MongoDB holds the record)
        to_publish = [alert for alert, _ in new] + [alert_of(doc) for doc in unpublished]
        if to_publish:
            await self._publish_alerts(to_publish)
            await self._store.mark_published([alert.alert_id for alert in to_publish])
        await self._remember([alert.alert_id for alert, _ in unseen])
        for alert, route in new:
            log.info(
                "alert_raised",
                alert_id=alert.alert_id,
                order_no=alert.order_no,
                kind=alert.kind.value,
                severity=alert.severity.value,
            )
            ALERTS_RAISED.labels(alert.kind.value, alert.severity.value).inc()
            self._dispatcher.enqueue(alert, route.channels)
        return len(new)

    async def _unseen(self, candidates: list[tuple[Alert, Route]]) -> list[tuple[Alert, Route]]:
        # Fast path: alerts already raised are remembered in Redis (set only after MongoDB has
        # them and they were published). With Redis down, MongoDB alone decides: slower, same.
        try:
            known = await self._seen.known([alert.alert_id for alert, _ in candidates])
        except REDIS_OUTAGES as error:
            log.warning("seen_alerts_unavailable", error=repr(error)[:200])
            return candidates
        return [pair for pair, seen in zip(candidates, known, strict=True) if not seen]

    async def _remember(self, alert_ids: list[str]) -> None:
        try:
            await self._seen.remember(alert_ids)
        except REDIS_OUTAGES as error:
            log.warning("seen_alerts_unavailable", error=repr(error)[:200])

    async def resume_pending(self) -> None:
        """At start: deliveries nobody holds are queued, interrupted claims settled."""
        await self._dispatcher.sweep(at_start=True)

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
                await self.escalate_due()
            except Exception:  # a passing store error must not end the watch
                log.exception("escalation_check_failed")

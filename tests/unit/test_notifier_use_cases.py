"""The notifier's use cases (alerting, delivery) over in-memory adapters: milliseconds, no
servers. The store fake is held to AlertStore's contract by the integration contract tests."""

import asyncio
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from services.notifier.alerting import Alerting
from services.notifier.attempt_log import AttemptLog
from services.notifier.delivery import ChannelWorker, Dispatcher
from services.notifier.routing import (
    QuietHours,
    Route,
    Routing,
    WebhookChannel,
    WeComChannel,
    alerts_for,
)
from services.notifier.store import DeliveryStatus
from shared.events import Severity
from tests.conftest import eventually
from tests.notifier_fakes import (
    InMemoryAlertStore,
    MemoryCollection,
    MemorySeen,
    RecordingPublisher,
    RecordingSender,
    SilentLive,
)
from tests.unit.test_notifier_pure import alert, tagged

HOOK = WebhookChannel(id="hook", type="webhook", url="http://h/", unsigned=True)
ROBOT = WeComChannel(id="robot", type="wecom", url="http://r/", rate_per_minute=60_000)
ROUTING = Routing.model_validate(
    {
        "channels": [HOOK.model_dump(), ROBOT.model_dump()],
        "routes": [
            {
                "id": "urgent",
                "kind": "urgent",
                "severity": "critical",
                "team": "support",
                "when_tags_any": ["urgent"],
                "channels": ["hook", "robot"],
            }
        ],
    }
)


class Process:
    """One notifier process's use cases, over a store that processes may share."""

    def __init__(
        self,
        store: InMemoryAlertStore,
        sender: RecordingSender | None = None,
        publisher: RecordingPublisher | None = None,
        seen: MemorySeen | None = None,
    ) -> None:
        self.sender = sender or RecordingSender()
        self.publisher = publisher or RecordingPublisher()
        live = SilentLive()
        workers = {
            channel.id: ChannelWorker(
                channel,
                self.sender,  # type: ignore[arg-type]
                store,  # type: ignore[arg-type]
                AttemptLog(MemoryCollection()),  # type: ignore[arg-type]
                live.publish,
                attempts=3,
                base_delay_s=0.001,
                max_delay_s=0.01,
            )
            for channel in ROUTING.channels
        }
        self.dispatcher = Dispatcher(workers, store, lease_s=60)  # type: ignore[arg-type]
        self.alerting = Alerting(
            ROUTING,
            store,  # type: ignore[arg-type]
            self.dispatcher,
            live,  # type: ignore[arg-type]
            seen or MemorySeen(),
            "https://shop/orders/",
            self.publisher,
        )

    async def __aenter__(self) -> "Process":
        self.dispatcher.start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.dispatcher.stop(grace_s=1)


def delivered(store: InMemoryAlertStore, channel: str) -> list[str]:
    return [
        alert_id
        for alert_id, document in store.alerts.items()
        for d in document["deliveries"]
        if d["channel"] == channel and d["status"] == DeliveryStatus.DELIVERED
    ]


async def test_a_redelivered_event_raises_publishes_and_delivers_one_alert() -> None:
    store = InMemoryAlertStore()
    async with Process(store) as process:
        assert await process.alerting.handle([tagged(["urgent"]), tagged(["urgent"])]) == 1
        assert await process.alerting.handle([tagged(["urgent"])]) == 0
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    assert process.publisher.published == ["SO-9:urgent"]
    assert process.sender.alert_ids("hook") == ["SO-9:urgent"]
    assert process.sender.alert_ids("robot") == ["SO-9:urgent"]


async def test_an_alert_stored_but_not_published_is_published_when_the_batch_comes_back() -> None:
    store = InMemoryAlertStore()
    async with Process(store, publisher=RecordingPublisher(fail=1)) as process:
        with pytest.raises(KafkaConnectionError):
            await process.alerting.handle([tagged(["urgent"])])
        await process.alerting.handle([tagged(["urgent"])])  # Kafka hands the batch back

    assert process.publisher.published == ["SO-9:urgent"]


async def test_alerts_are_raised_with_redis_down() -> None:
    store = InMemoryAlertStore()
    async with Process(store, seen=MemorySeen(down=True)) as process:
        assert await process.alerting.handle([tagged(["urgent"])]) == 1
        assert await process.alerting.handle([tagged(["urgent"])]) == 0  # MongoDB decides

    assert list(store.alerts) == ["SO-9:urgent"]


async def test_two_processes_resuming_the_same_pending_alert_send_it_once() -> None:
    store = InMemoryAlertStore()
    sender = RecordingSender()
    async with Process(store, sender) as first:
        await first.alerting.handle([tagged(["urgent"])])
        async with Process(store, sender) as second:
            await second.alerting.resume_pending()
            await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)
            await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    assert sender.alert_ids("hook") == ["SO-9:urgent"]
    assert sender.alert_ids("robot") == ["SO-9:urgent"]


async def test_a_failed_attempt_is_retried_under_the_same_claim() -> None:
    store = InMemoryAlertStore()
    async with Process(store, RecordingSender(fail=1)) as process:
        await process.alerting.handle([tagged(["urgent"])])
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    hook = store.alerts["SO-9:urgent"]["deliveries"][0]
    attempts = [d["attempts"] for d in store.alerts["SO-9:urgent"]["deliveries"]]
    assert sorted(attempts) == [1, 2]
    assert hook["status"] == "delivered"


async def test_an_interrupted_claim_is_resent_under_its_key_or_marked_uncertain() -> None:
    store = InMemoryAlertStore()
    await store.insert_new(alerts_for(tagged(["urgent"]), ROUTING, "https://shop/orders/"))
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    for channel in ("hook", "robot"):  # a process claimed them, then died mid-send
        await store.claim_deliveries(["SO-9:urgent"], channel, f"dead-{channel}", "SO-9:urgent")
    for d in store.alerts["SO-9:urgent"]["deliveries"]:
        d["claimed_at"] = long_ago

    async with Process(store) as restarted:
        await restarted.dispatcher.sweep()
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)

    [(_, resent)] = [(c, m) for c, m in restarted.sender.sent if c == "hook"]
    assert resent.idempotency_key == "SO-9:urgent"
    assert restarted.sender.alert_ids("robot") == []
    robot = next(d for d in store.alerts["SO-9:urgent"]["deliveries"] if d["channel"] == "robot")
    assert robot["status"] == "uncertain"


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value


async def test_quiet_hours_hold_back_what_is_not_critical() -> None:
    quiet = QuietHours(start=clock(0, 0), end=clock(23, 59, 59), timezone="UTC")
    channel = WebhookChannel(id="quiet", type="webhook", url="http://q/", quiet_hours=quiet)
    store = InMemoryAlertStore()
    critical = alert()
    warning = alert().model_copy(update={"alert_id": "SO-1:vip", "severity": Severity.WARNING})
    route = Route(
        id="r",
        kind="urgent",
        severity="critical",
        team="t",
        when_tags_any=["x"],
        channels=["quiet"],
    )
    await store.insert_new([(critical, route), (warning, route)])
    sender = RecordingSender()
    worker = ChannelWorker(
        channel,
        sender,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        AttemptLog(MemoryCollection()),  # type: ignore[arg-type]
        SilentLive().publish,
        attempts=1,
        base_delay_s=0,
        max_delay_s=0,
    )
    dispatcher = Dispatcher({"quiet": worker}, store, lease_s=60)  # type: ignore[arg-type]
    dispatcher.start()
    try:
        dispatcher.enqueue(warning, ["quiet"])
        dispatcher.enqueue(critical, ["quiet"])
        await eventually(lambda: _true(len(delivered(store, "quiet")) == 1), within=5)
    finally:
        await dispatcher.stop(grace_s=0)

    assert sender.alert_ids("quiet") == ["SO-9:urgent"]
    held = store.alerts["SO-1:vip"]["deliveries"][0]
    assert held["status"] == "pending"  # waits for the end of the quiet hours, still on record

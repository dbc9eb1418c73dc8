"""The notifier's use cases (alerting, delivery) over in-memory adapters: milliseconds, no
servers. The store fake is held to AlertStore's contract by the integration contract tests."""

import asyncio
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import AutoReconnect

from services.notifier.alerting import Alerting
from services.notifier.attempt_log import AttemptLog
from services.notifier.delivery import ChannelWorker, Dispatcher
from services.notifier.grouping import AlertGroup, evolve
from services.notifier.routing import (
    QuietHours,
    Routing,
    WebhookChannel,
    WeComChannel,
)
from services.notifier.store import DeliveryStatus, new_document
from shared.events import OrderTagged, Severity
from shared.models import OrderStatus
from tests.conftest import eventually
from tests.notifier_fakes import (
    HeldSender,
    InMemoryAlertStore,
    MemoryCollection,
    RecordingPublisher,
    RecordingSender,
    SilentLive,
)
from tests.unit.test_notifier_pure import tagged

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


LEASE_S = 60


class Process:
    """One notifier process's use cases, over a store that processes may share."""

    def __init__(
        self,
        store: InMemoryAlertStore,
        sender: RecordingSender | None = None,
        publisher: RecordingPublisher | None = None,
        routing: Routing = ROUTING,
        *,
        renew_s: float | None = None,
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
            for channel in routing.channels
        }
        self.dispatcher = Dispatcher(
            workers,
            store,  # type: ignore[arg-type]
            lease_s=LEASE_S,
            renew_s=renew_s,
        )
        self.alerting = Alerting(
            routing,
            store,  # type: ignore[arg-type]
            self.dispatcher,
            live,  # type: ignore[arg-type]
            "https://shop/orders/",
            self.publisher,
        )

    async def __aenter__(self) -> "Process":
        self.dispatcher.start()
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.dispatcher.stop(grace_s=1)


def group_for(event: OrderTagged, team: str = "support") -> AlertGroup:
    evolution = evolve(None, event, team, ROUTING.teams()[team], "https://shop/orders/")
    assert evolution is not None
    return evolution.group


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
        event = tagged(["urgent"])
        assert await process.alerting.handle([event, event]) == 1
        # the batch comes back (or the tagger sends it again), then a new event: nothing new
        assert await process.alerting.handle([event]) == 0
        assert await process.alerting.handle([tagged(["urgent"])]) == 0
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    assert process.publisher.revisions == [("SO-9:support", 1)]
    assert process.sender.alert_ids("hook") == ["SO-9:support"]
    assert process.sender.alert_ids("robot") == ["SO-9:support"]


async def test_an_alert_stored_but_not_published_is_published_when_the_batch_comes_back() -> None:
    store = InMemoryAlertStore()
    async with Process(store, publisher=RecordingPublisher(fail=1)) as process:
        event = tagged(["urgent"])
        with pytest.raises(KafkaConnectionError):
            await process.alerting.handle([event])
        assert process.publisher.revisions == []
        await process.alerting.handle([event])  # Kafka hands the batch back
        await process.alerting.handle([tagged(["urgent"])])  # nothing new

    assert process.publisher.revisions == [("SO-9:support", 1)]


async def test_a_batch_that_comes_back_longer_publishes_the_revision_as_stored() -> None:
    """The first run stored the raise and stopped before Kafka took it; the batch comes back
    with a later event that lowers the severity (no notice): revision 1 goes out as it was
    stored, never with the later event's change."""
    store = InMemoryAlertStore()
    async with Process(store, publisher=RecordingPublisher(fail=1), routing=CALIBRATED) as process:
        raised = tagged(["urgent", "vip"])
        with pytest.raises(KafkaConnectionError):
            await process.alerting.handle([raised])
        await process.alerting.handle([raised, tagged(["urgent"])])

    assert store.alerts["SO-9:support"]["severity"] == "warning"
    assert (process.publisher.revisions, process.publisher.severities) == (
        [("SO-9:support", 1)],
        ["critical"],
    )


async def test_a_revision_a_committed_batch_made_is_never_sent_again() -> None:
    """Revision 1 went out and its batch was committed. A later batch lowers its severity (no
    notice) and raises another alert, and fails to publish; when it comes back only the new
    alert goes out: revision 1 is not sent again with the lowered severity. Nor after an
    acknowledgement, when the tagger sends the raise again."""
    store = InMemoryAlertStore()
    publisher = RecordingPublisher()
    async with Process(store, publisher=publisher, routing=CALIBRATED) as process:
        raised = tagged(["urgent", "vip"])
        await process.alerting.handle([raised])
        other = tagged(["urgent"]).model_copy(update={"order_no": "SO-10"})
        lowered = tagged(["urgent"])
        publisher.fail = 1
        with pytest.raises(KafkaConnectionError):
            await process.alerting.handle([lowered, other])
        await process.alerting.handle([lowered, other])
        await store.acknowledge("SO-9:support", "王芳")
        await process.alerting.handle([raised])

    assert store.alerts["SO-9:support"]["status"] == "acknowledged"
    assert (publisher.revisions, publisher.severities) == (
        [("SO-9:support", 1), ("SO-10:support", 1)],
        ["critical", "warning"],
    )


async def test_an_event_sent_again_after_a_later_change_publishes_nothing() -> None:
    store = InMemoryAlertStore()
    async with Process(store, routing=CALIBRATED) as process:
        raised = tagged(["urgent", "vip"])
        await process.alerting.handle([raised])
        await process.alerting.handle([tagged(["urgent"])])  # lowered: not sent
        await process.alerting.handle([raised])  # the tagger sent it again

    assert process.publisher.revisions == [("SO-9:support", 1)]


async def test_two_processes_resuming_the_same_pending_alert_send_it_once() -> None:
    store = InMemoryAlertStore()
    sender = RecordingSender()
    async with Process(store, sender) as first:
        await first.alerting.handle([tagged(["urgent"])])
        async with Process(store, sender) as second:
            await second.alerting.resume_pending()
            await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)
            await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    assert sender.alert_ids("hook") == ["SO-9:support"]
    assert sender.alert_ids("robot") == ["SO-9:support"]


async def test_a_failed_attempt_is_retried_under_the_same_claim() -> None:
    store = InMemoryAlertStore()
    async with Process(store, RecordingSender(fail=1)) as process:
        await process.alerting.handle([tagged(["urgent"])])
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    hook = store.alerts["SO-9:support"]["deliveries"][0]
    attempts = [d["attempts"] for d in store.alerts["SO-9:support"]["deliveries"]]
    assert sorted(attempts) == [1, 2]
    assert hook["status"] == "delivered"


@pytest.mark.parametrize("channel", ["hook", "robot"])
async def test_a_send_without_an_answer_is_resent_only_where_the_channel_has_a_key(
    channel: str,
) -> None:
    """A read timeout: the request arrived, the answer did not. The webhook gets it again
    under the same key (its receiver deduplicates); a chat robot has no key, so it is settled
    ``uncertain`` instead of showing staff the alert twice."""
    store = InMemoryAlertStore()
    routing = Routing.model_validate(
        {
            **ROUTING.model_dump(),
            "routes": [{**ROUTING.routes[0].model_dump(), "channels": [channel]}],
        }
    )
    async with Process(store, RecordingSender(unanswered=1), routing=routing) as process:
        await process.alerting.handle([tagged(["urgent"])])

        async def settled() -> bool:
            [d] = store.alerts["SO-9:support"]["deliveries"]
            return str(d["status"]) in {"delivered", "uncertain"}

        await eventually(settled, within=5)

    [d] = store.alerts["SO-9:support"]["deliveries"]
    sent = process.sender.alert_ids(channel)
    if channel == "hook":
        assert (d["status"], sent) == ("delivered", ["SO-9:support", "SO-9:support"])
        assert len({m.idempotency_key for _, m in process.sender.sent}) == 1
    else:
        assert (d["status"], sent) == ("uncertain", ["SO-9:support"])


async def test_an_interrupted_claim_is_resent_under_its_key_or_marked_uncertain() -> None:
    store = InMemoryAlertStore()
    await store.insert([new_document(group_for(tagged(["urgent"])), ["hook", "robot"])])
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    for channel in ("hook", "robot"):  # a process claimed them, then died mid-send
        await store.claim_deliveries(["SO-9:support"], channel, f"dead-{channel}", "SO-9:support")
    for d in store.alerts["SO-9:support"]["deliveries"]:
        d["claimed_at"] = long_ago

    async with Process(store) as restarted:
        await restarted.dispatcher.sweep()
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)

    [(_, resent)] = [(c, m) for c, m in restarted.sender.sent if c == "hook"]
    assert resent.idempotency_key == "SO-9:support"
    assert restarted.sender.alert_ids("robot") == []
    robot = next(d for d in store.alerts["SO-9:support"]["deliveries"] if d["channel"] == "robot")
    assert robot["status"] == "uncertain"


def lapse_claims(store: InMemoryAlertStore) -> None:
    """Time passes: every claim's lease has run out, unless its holder renews it."""
    long_ago = datetime.now(UTC) - timedelta(seconds=LEASE_S * 2)
    for document in store.alerts.values():
        for d in document["deliveries"]:
            if d["status"] == DeliveryStatus.SENDING:
                d["claimed_at"] = long_ago


async def renewed(store: InMemoryAlertStore, alert_id: str, channel: str) -> bool:
    await asyncio.sleep(0)
    d = next(d for d in store.alerts[alert_id]["deliveries"] if d["channel"] == channel)
    return bool(d["claimed_at"] > datetime.now(UTC) - timedelta(seconds=LEASE_S))


async def test_a_slow_send_keeps_its_claim_however_many_leases_it_lasts() -> None:
    """A webhook answering after minutes: the heartbeat renews the claim, so another process's
    sweeper never takes it over (which would send it twice)."""
    store = InMemoryAlertStore()
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["hook"])])
    slow = HeldSender()
    async with Process(store, slow, renew_s=0.01) as first, Process(store) as second:
        first.dispatcher.enqueue(group.alert(), ["hook"])
        await eventually(lambda: _true(len(slow.arrived) == 1), within=5)
        for _ in range(3):  # three leases pass while the send is on the wire
            lapse_claims(store)
            await eventually(lambda: renewed(store, group.alert_id, "hook"), within=5)
            await second.dispatcher.sweep()
        assert second.sender.sent == []
        slow.release.set()
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)

    assert slow.alert_ids("hook") == [group.alert_id]
    assert store.alerts[group.alert_id]["deliveries"][0]["attempts"] == 1


async def test_without_renewals_a_slow_send_is_taken_over_and_sent_again() -> None:
    """What the heartbeat prevents: a live claim whose lease is not renewed looks dead."""
    store = InMemoryAlertStore()
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["hook"])])
    slow = HeldSender()
    async with Process(store, slow, renew_s=3600) as first, Process(store) as second:
        first.dispatcher.enqueue(group.alert(), ["hook"])
        await eventually(lambda: _true(len(slow.arrived) == 1), within=5)
        lapse_claims(store)
        await second.dispatcher.sweep()
        await eventually(lambda: _true(len(second.sender.sent) == 1), within=5)
        slow.release.set()

    [(_, resent)] = second.sender.sent
    assert resent.idempotency_key == group.alert_id  # the same key: a receiver sees it once


async def test_a_process_never_takes_over_its_own_claim_when_a_renewal_is_late() -> None:
    """Its own sweeper knows the claim is alive: a late renewal (MongoDB down for longer than a
    lease) does not make a chat robot's send ``uncertain`` nor a webhook's go out twice."""
    store = InMemoryAlertStore()
    group = group_for(tagged(["urgent"]))
    await store.insert([new_document(group, ["robot"])])
    slow = HeldSender()
    async with Process(store, slow, renew_s=3600) as process:
        process.dispatcher.enqueue(group.alert(), ["robot"])
        await eventually(lambda: _true(len(slow.arrived) == 1), within=5)
        lapse_claims(store)
        await process.dispatcher.sweep()
        assert store.alerts[group.alert_id]["deliveries"][0]["status"] == "sending"
        slow.release.set()
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    assert len(slow.arrived) == 1


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value


async def test_quiet_hours_hold_back_what_is_not_critical() -> None:
    quiet = QuietHours(start=clock(0, 0), end=clock(23, 59, 59), timezone="UTC")
    channel = WebhookChannel(id="quiet", type="webhook", url="http://q/", quiet_hours=quiet)
    store = InMemoryAlertStore()
    critical = group_for(tagged(["urgent"]))
    warning = critical.model_copy(
        update={"alert_id": "SO-1:support", "order_no": "SO-1", "severity": Severity.WARNING}
    )
    await store.insert([new_document(g, ["quiet"]) for g in (critical, warning)])
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
        dispatcher.enqueue(warning.alert(), ["quiet"])
        dispatcher.enqueue(critical.alert(), ["quiet"])
        await eventually(lambda: _true(len(delivered(store, "quiet")) == 1), within=5)
    finally:
        await dispatcher.stop(grace_s=0)

    assert sender.alert_ids("quiet") == ["SO-9:support"]
    held = store.alerts["SO-1:support"]["deliveries"][0]
    assert held["status"] == "pending"  # waits for the end of the quiet hours, still on record


CALIBRATED = Routing.model_validate(
    {
        "channels": [HOOK.model_dump(), ROBOT.model_dump()],
        "routes": [
            {
                "id": "urgent",
                "kind": "urgent",
                "severity": "warning",
                "severity_rules": [
                    {"severity": "critical", "when": {"tags_any": ["vip"]}, "why": "urgent VIP"}
                ],
                "team": "support",
                "when_tags_any": ["urgent"],
                "open_while_status": ["pending", "processed"],
                "channels": ["hook", "robot"],
            },
            {
                "id": "vip",
                "kind": "vip",
                "severity": "info",
                "team": "support",
                "when_tags_any": ["vip"],
                "open_while_status": ["pending", "processed"],
                "channels": ["hook", "robot"],
            },
        ],
    }
)


def sent(process: Process, channel: str) -> list[tuple[str, str, str]]:
    return [
        (m.idempotency_key, a.severity.value, a.status.value)
        for c, m in process.sender.sent
        if c == channel
        for a in m.alerts
    ]


async def test_a_rise_is_told_again_and_a_resolution_only_where_it_is_wanted() -> None:
    store = InMemoryAlertStore()
    async with Process(store, routing=CALIBRATED) as process:
        await process.alerting.handle([tagged(["urgent"])])
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)
        await process.alerting.handle([tagged(["urgent", "vip"])])
        await eventually(lambda: _true(len(sent(process, "robot")) == 2), within=5)
        shipped = tagged([]).model_copy(update={"facts": tagged([]).facts.model_copy(
            update={"status": OrderStatus.SHIPPED})})  # fmt: skip
        await process.alerting.handle([shipped])
        await eventually(lambda: _true(len(sent(process, "hook")) == 3), within=5)

    assert list(store.alerts) == ["SO-9:support"]
    assert sent(process, "hook") == [
        ("SO-9:support", "warning", "open"),
        ("SO-9:support:r2", "critical", "open"),
        ("SO-9:support:r3", "critical", "resolved"),
    ]
    assert sent(process, "robot") == sent(process, "hook")[:2]  # chat robots: no resolutions
    assert process.publisher.published == ["SO-9:support"] * 3


async def test_a_change_stored_but_not_told_is_told_when_the_batch_comes_back() -> None:
    store = InMemoryAlertStore()
    telling = store.tell
    failures = [KafkaConnectionError("a crash between storing and telling")]

    async def tell_once_failing(alert_id: str, channel: str, revision: int, **how: Any) -> bool:
        if failures:
            raise failures.pop()
        return await telling(alert_id, channel, revision, **how)

    async def deliveries_moved_since_the_read(*_: Any) -> bool:
        return False  # so the change is stored with notice_due, and told after (tell)

    store.tell = tell_once_failing  # type: ignore[method-assign]
    store.update_and_tell = deliveries_moved_since_the_read  # type: ignore[method-assign]
    async with Process(store, routing=CALIBRATED) as process:
        await process.alerting.handle([tagged(["urgent"])])
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)
        rise = tagged(["urgent", "vip"])  # later than the first: events carry their time
        with pytest.raises(KafkaConnectionError):
            await process.alerting.handle([rise])
        assert store.alerts["SO-9:support"]["notice_due"] == 2
        assert await process.alerting.handle([rise]) == 0  # applied already: nothing new
        await eventually(lambda: _true(len(sent(process, "hook")) == 2), within=5)

    assert store.alerts["SO-9:support"]["notice_due"] is None
    assert [key for key, _, _ in sent(process, "hook")] == ["SO-9:support", "SO-9:support:r2"]


async def test_an_alert_stored_before_a_lost_reply_is_delivered_when_the_batch_comes_back() -> None:
    """MongoDB stored the new alert and went down before answering: the batch comes back, its
    event applied already (nothing new to tell), and the stored delivery must still go out now,
    not a lease later when the sweeper finds it."""
    store = InMemoryAlertStore()
    inserting = store.insert

    async def insert_then_lose_the_reply(documents: list[dict[str, Any]]) -> set[str]:
        await inserting(documents)
        store.insert = inserting  # type: ignore[method-assign]
        raise AutoReconnect("connection reset after the write")

    store.insert = insert_then_lose_the_reply  # type: ignore[method-assign]
    async with Process(store) as process:
        with pytest.raises(AutoReconnect):
            await process.alerting.handle([tagged(["urgent"])])
        assert await process.alerting.handle([tagged(["urgent"])]) == 0  # applied already
        await eventually(lambda: _true(len(delivered(store, "hook")) == 1), within=5)
        await eventually(lambda: _true(len(delivered(store, "robot")) == 1), within=5)

    assert process.sender.alert_ids("hook") == ["SO-9:support"]
    assert process.sender.alert_ids("robot") == ["SO-9:support"]


async def test_an_alert_resolved_before_its_channels_heard_of_it_is_sent_nowhere() -> None:
    """Raised and resolved in one batch: each delivery is settled ``skipped`` by the claim,
    nothing goes out (and nothing is read back to decide it)."""
    store = InMemoryAlertStore()
    raised = tagged(["urgent"])  # events carry their time: the shipping comes later
    shipped = tagged([]).model_copy(update={"facts": tagged([]).facts.model_copy(
        update={"status": OrderStatus.SHIPPED})})  # fmt: skip

    def skipped() -> list[str]:
        return [d["status"] for d in store.alerts["SO-9:support"]["deliveries"]]

    async with Process(store) as process:
        await process.alerting.handle([raised, shipped])
        await eventually(lambda: _true(skipped() == ["skipped", "skipped"]), within=5)

    assert store.alerts["SO-9:support"]["status"] == "resolved"
    assert process.sender.sent == []


async def test_a_change_whose_deliveries_are_as_read_is_stored_and_told_in_one_write() -> None:
    store = InMemoryAlertStore()
    telling = store.tell
    told_apart: list[str] = []

    async def tell(alert_id: str, channel: str, revision: int, **how: Any) -> bool:
        told_apart.append(channel)
        return await telling(alert_id, channel, revision, **how)

    store.tell = tell  # type: ignore[method-assign]
    async with Process(store, routing=CALIBRATED) as process:
        await process.alerting.handle([tagged(["urgent"])])
        for channel in ("hook", "robot"):  # settled: nothing moves after the next read
            await eventually(lambda: _true(len(delivered(store, channel)) == 1), within=5)  # noqa: B023
        await process.alerting.handle([tagged(["urgent", "vip"])])
        await eventually(lambda: _true(len(sent(process, "hook")) == 2), within=5)

    assert told_apart == []
    assert store.alerts["SO-9:support"]["notice_due"] is None
    assert [key for key, _, _ in sent(process, "hook")] == ["SO-9:support", "SO-9:support:r2"]

"""One alert per order and team through the real stack: raised, updated when a later reason
raises its severity, resolved when the order moves on; redelivered events and a restart tell
nobody twice."""

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.settings import NotifierSettings
from shared.events import Alert, AppliedTag, OrderFacts, OrderTagged, TagSource, utc_now
from shared.models import OrderStatus
from shared.settings import Settings
from tests.conftest import eventually
from tests.integration.conftest import read_topic
from tests.integration.receivers import HttpReceiver, http_receiver
from tests.integration.test_notifier import notifier, publish_tagged

pytestmark = pytest.mark.integration


@pytest.fixture
def notifier_settings(settings: Settings, run_id: str) -> NotifierSettings:
    return NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"notifier-{run_id}",
        notifier_retry_base_s=0.05,
    )


ROUTES = [
    {
        "id": "urgent",
        "kind": "urgent",
        "team": "support",
        "when_tags_any": ["urgent"],
        "open_while_status": ["pending", "processed"],
        "severity": "info",
        "severity_rules": [
            {"severity": "critical", "when": {"tags_any": ["vip"]}, "why": "urgent VIP order"}
        ],
        "channels": ["hook", "robot"],
    },
    {
        "id": "vip",
        "kind": "vip",
        "team": "support",
        "when_tags_any": ["vip"],
        "open_while_status": ["pending", "processed"],
        "severity": "info",
        "channels": ["hook", "robot"],
    },
]


def routing(tmp_path: Path, receiver: HttpReceiver) -> Path:
    path = tmp_path / "routing.yaml"
    channels = [
        # a webhook that wants everything, resolutions included (its default)
        {
            "id": "hook",
            "type": "webhook",
            "url": f"{receiver.url}/hook",
            "unsigned": True,
            "min_severity": "info",
        },
        # a chat robot with its defaults: warning and up, no resolutions
        {"id": "robot", "type": "wecom", "url": f"{receiver.url}/robot", "rate_per_minute": 600},
    ]
    path.write_text(json.dumps({"channels": channels, "routes": ROUTES}))
    return path


def change(order_no: str, tags: Sequence[str], status: OrderStatus, minute: int) -> OrderTagged:
    at = utc_now() + timedelta(minutes=minute)
    applied = [
        AppliedTag(name=n, source=TagSource.RULE, rule_id=f"r.{n}", reason=f"{n} because", at=at)
        for n in tags
    ]
    return OrderTagged(
        occurred_at=at,
        source_event_id=uuid.uuid4(),
        order_no=order_no,
        customer_id="C-1",
        tags_added=applied,
        tags=applied,
        facts=OrderFacts(status=status, total=Decimal("1500.00"), currency="CNY"),
    )


async def settled(mongo_db: AsyncDatabase[dict[str, Any]], alert_id: str, revision: int) -> bool:
    """The alert is at ``revision``, told, and nothing of it is waiting to be sent."""
    document = await mongo_db["alerts"].find_one({"alert_id": alert_id})
    return (
        document is not None
        and document["revision"] == revision
        and not document.get("notice_due")
        and all(d["status"] not in {"pending", "sending"} for d in document["deliveries"])
        and not any(d.get("follow_up") for d in document["deliveries"])
    )


async def test_an_order_keeps_one_alert_that_rises_and_resolves_told_once_per_change(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    order_no = f"{run_id}-1"
    alert_id = f"{order_no}:support"
    urgent = change(order_no, ["urgent"], OrderStatus.PENDING, 0)
    urgent_vip = change(order_no, ["urgent", "vip"], OrderStatus.PENDING, 1)
    shipped = change(order_no, ["vip"], OrderStatus.SHIPPED, 2)
    async with http_receiver() as receiver:
        path = routing(tmp_path, receiver)
        async with notifier(notifier_settings, path):
            await publish_tagged(notifier_settings, [urgent, urgent])
            await eventually(lambda: settled(mongo_db, alert_id, 1), within=30)
            # (published together, a raise and a rise in one batch are one message)
            await publish_tagged(notifier_settings, [urgent_vip])
            await eventually(lambda: settled(mongo_db, alert_id, 2), within=30)
        async with notifier(notifier_settings, path):  # a restart; Kafka redelivers
            await publish_tagged(notifier_settings, [urgent, urgent_vip, shipped, shipped])
            await eventually(lambda: settled(mongo_db, alert_id, 3), within=30)

    [stored] = await mongo_db["alerts"].find({"order_no": order_no}).to_list(None)
    hook = [json.loads(r.body)["alerts"][0] for r in receiver.at("/hook")]
    keys = [r.headers["Idempotency-Key"] for r in receiver.at("/hook")]
    robot = [json.loads(r.body)["markdown"]["content"] for r in receiver.at("/robot")]

    assert stored["alert_id"] == alert_id
    assert (stored["status"], stored["severity"], stored["revision"]) == (
        "resolved",
        "critical",
        3,
    )
    assert [c["change"] for c in stored["history"]] == [
        "reason_added",
        "raised",
        "reason_added",
        "escalated",
        "reason_cleared",
        "reason_cleared",
        "resolved",
    ]
    # the webhook: raised (info), updated (critical), resolved, each once, each its own key
    assert keys == [alert_id, f"{alert_id}:r2", f"{alert_id}:r3"]
    assert [(a["status"], a["severity"], a["revision"]) for a in hook] == [
        ("open", "info", 1),
        ("open", "critical", 2),
        ("resolved", "critical", 3),
    ]
    # the chat robot: nothing while it was info, once when it became critical, no resolution
    assert len(robot) == 1
    assert "【更新】" in robot[0]  # told as an update of an alert (its first on this robot)
    published = await read_topic(
        notifier_settings, notifier_settings.topics.alerts, 3, extra_wait=1
    )
    revisions = [
        (a.alert_id, a.revision, a.status.value)
        for a in (Alert.model_validate_json(r.value) for r in published)
    ]
    assert revisions == [(alert_id, 1, "open"), (alert_id, 2, "open"), (alert_id, 3, "resolved")]


async def test_an_alert_that_resolves_before_a_channel_heard_of_it_is_not_sent_there(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    order_no = f"{run_id}-2"
    alert_id = f"{order_no}:support"
    raised = change(order_no, ["urgent", "vip"], OrderStatus.PENDING, 0)
    cancelled = change(order_no, ["vip"], OrderStatus.CANCELLED, 1)
    async with http_receiver() as receiver:
        receiver.fail_first = 1000  # the channels refuse while the order is cancelled
        path = routing(tmp_path, receiver)
        settings = notifier_settings.model_copy(update={"notifier_retry_attempts": 1})
        async with notifier(settings, path):
            await publish_tagged(settings, [raised])
            await eventually(lambda: settled(mongo_db, alert_id, 1), within=30)
        receiver.fail_first = 0
        stored = await mongo_db["alerts"].find_one({"alert_id": alert_id})
        assert stored is not None
        assert {d["status"] for d in stored["deliveries"]} == {"failed"}
        async with notifier(settings, path):
            await publish_tagged(settings, [cancelled])
            await eventually(lambda: settled(mongo_db, alert_id, 2), within=30)

    stored = await mongo_db["alerts"].find_one({"alert_id": alert_id})
    assert stored is not None
    assert stored["status"] == "resolved"
    by_channel = {d["channel"]: d["status"] for d in stored["deliveries"]}
    # the webhook wants resolutions but never heard of the alert: nothing more is sent to it
    assert by_channel == {"hook": "failed", "robot": "failed"}
    assert (len(receiver.at("/hook")), len(receiver.at("/robot"))) == (1, 1)

"""The notifier on the real stack, with local receivers for every channel."""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.app import create_app
from services.notifier.channels import verify_webhook
from services.notifier.settings import NotifierSettings
from shared.events import Alert, AppliedTag, OrderFacts, OrderTagged, TagSource, utc_now
from shared.kafka import ensure_topics, make_broker
from shared.models import OrderStatus
from shared.settings import Settings
from tests.conftest import eventually
from tests.integration.conftest import read_topic, running
from tests.integration.receivers import HttpReceiver, http_receiver, smtp_server

pytestmark = pytest.mark.integration


def tagged_event(order_no: str, added: Sequence[str], tier: str | None = None) -> OrderTagged:
    tags = [
        AppliedTag(
            name=n,
            source=TagSource.RULE,
            rule_id=f"rule.{n}",
            rule_version=1,
            reason=f"{n} because",
            at=utc_now(),
        )
        for n in added
    ]
    return OrderTagged(
        source_event_id="6f1c1d9e-3f7a-4d59-9a43-0e0b6b1f2c11",
        order_no=order_no,
        customer_id="C-1",
        tags_added=tags,
        tags=tags,
        facts=OrderFacts(
            status=OrderStatus.PENDING, total=Decimal("999.00"), currency="CNY", customer_tier=tier
        ),
    )


async def publish_tagged(settings: Settings, events: Sequence[OrderTagged]) -> None:
    await ensure_topics(settings)
    broker = make_broker(settings)
    async with broker:
        await broker.start()
        for event in events:
            await broker.publish(
                event, topic=settings.topics.tagged, key=event.customer_id.encode()
            )


def routing_file(
    tmp_path: Path,
    channels: list[dict[str, Any]],
    route_channels: list[str],
    escalation: dict[str, Any] | None = None,
) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(
        json.dumps(
            {
                "channels": channels,
                "routes": [
                    {
                        "id": "urgent",
                        "kind": "urgent",
                        "severity": "critical",
                        "team": "support",
                        "when_tags_any": ["urgent"],
                        "channels": route_channels,
                    },
                    {
                        "id": "vip",
                        "kind": "vip",
                        "severity": "warning",
                        "team": "vip-desk",
                        "when_tags_any": ["vip"],
                        "channels": route_channels,
                    },
                ],
                "escalation": escalation
                or {"after_minutes": 60, "kinds": ["urgent"], "channels": []},
                "team_names": {
                    "support": {"zh-CN": "客服", "en": "Support"},
                    "vip-desk": {"zh-CN": "VIP 专席", "en": "VIP desk"},
                },
            }
        )
    )
    return path


@pytest.fixture
def notifier_settings(settings: Settings, run_id: str) -> NotifierSettings:
    return NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"notifier-{run_id}",
        notifier_retry_base_s=0.05,
        notifier_escalation_check_s=0.2,
    )


@asynccontextmanager
async def notifier(settings: NotifierSettings, routing: Path) -> AsyncIterator[Any]:
    app = create_app(settings.model_copy(update={"notifier_routing_file": routing}))
    async with running(app):
        yield app


async def count_at(receiver: HttpReceiver, path: str, count: int) -> list[Any]:
    async def arrived() -> list[Any] | None:
        found = receiver.at(path)
        return found if len(found) >= count else None

    result: list[Any] = await eventually(arrived, within=30)
    return result


async def alerts_at(receiver: HttpReceiver, path: str, count: int) -> list[str]:
    """Wait until ``count`` alerts arrived at ``path`` (single messages or digests)."""

    async def arrived() -> list[str] | None:
        ids = [a["alert_id"] for r in receiver.at(path) for a in json.loads(r.body)["alerts"]]
        return ids if len(ids) >= count else None

    result: list[str] = await eventually(arrived, within=30)
    return result


async def test_each_channel_gets_its_own_format_signed_where_it_should_be(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    run_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T_HOOK_SECRET", "hook-secret")
    monkeypatch.setenv("T_DING_SECRET", "ding-secret")
    async with http_receiver() as receiver, smtp_server() as (smtp_port, mails):
        channels = [
            {
                "id": "hook",
                "type": "webhook",
                "url": f"{receiver.url}/hook",
                "secret_env": "T_HOOK_SECRET",
            },
            {"id": "wecom", "type": "wecom", "url": f"{receiver.url}/wecom?key=k"},
            {
                "id": "ding",
                "type": "dingtalk",
                "url": f"{receiver.url}/ding?access_token=t",
                "secret_env": "T_DING_SECRET",
            },
            {"id": "slack", "type": "slack", "url": f"{receiver.url}/slack"},
            {
                "id": "mail",
                "type": "email",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "sender": "alerts@ordertag.dev",
                "to": ["support@ordertag.dev"],
            },
        ]
        path = routing_file(tmp_path, channels, [c["id"] for c in channels])
        console = {"notifier_console_url": "https://console.shop.example"}
        async with notifier(notifier_settings.model_copy(update=console), path) as app:
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-1", ["urgent"])])
            [hook] = await count_at(receiver, "/hook", 1)
            [wecom] = await count_at(receiver, "/wecom", 1)
            [ding] = await count_at(receiver, "/ding", 1)
            [slack] = await count_at(receiver, "/slack", 1)
            await eventually(lambda: _truthy(mails), within=30)
            # each outcome is counted once stored, a moment after the receiver has it
            await eventually(lambda: _has_series(app, EXPECTED_SERIES), within=30)

    assert verify_webhook("hook-secret", hook.headers["Ordertag-Signature"], hook.body)
    assert json.loads(hook.body)["alerts"][0]["alert_id"] == f"{run_id}-1:support"
    # the link a person clicks opens the console's order page, not the Tag API's JSON
    order_page = f"https://console.shop.example/console/orders/{run_id}-1"
    assert json.loads(hook.body)["alerts"][0]["order_url"] == order_page
    assert f"({order_page})" in json.loads(wecom.body)["markdown"]["content"]
    assert hook.headers["Idempotency-Key"] == f"{run_id}-1:support"
    assert json.loads(wecom.body)["msgtype"] == "markdown"
    assert {"timestamp", "sign", "access_token"} <= set(ding.query)
    assert f"{run_id}-1" in json.loads(ding.body)["markdown"]["text"]
    assert json.loads(slack.body)["text"].startswith("[critical] urgent")
    assert mails[0]["Subject"].startswith("ordertag: [critical] urgent")
    assert mails[0].is_multipart()


EXPECTED_SERIES = (
    'ordertag_notifier_alerts_raised_total{kind="urgent",severity="critical"}',
    'ordertag_notifier_deliveries_total{channel="mail",outcome="delivered"}',
    'ordertag_notifier_delivery_latency_seconds_count{channel="hook"}',
    'ordertag_notifier_send_duration_seconds_count{channel="ding"}',
    'ordertag_notifier_pending_deliveries{channel="slack"}',
)


async def _has_series(app: Any, names: Sequence[str]) -> bool:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        text = (await client.get("/metrics/")).text
    return all(name in text for name in names)


async def _truthy(value: Any) -> Any:
    return value


async def test_redelivery_and_restart_alert_exactly_once(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    event = tagged_event(f"{run_id}-1", ["urgent", "vip"])
    async with http_receiver() as receiver:
        path = routing_file(
            tmp_path,
            [{"id": "hook", "type": "webhook", "url": f"{receiver.url}/hook", "unsigned": True}],
            ["hook"],
        )
        async with notifier(notifier_settings, path):
            await publish_tagged(notifier_settings, [event, event])
            await alerts_at(receiver, "/hook", 2)
        async with notifier(notifier_settings, path):  # a restart replays nothing new
            await publish_tagged(notifier_settings, [event])
            later = tagged_event(f"{run_id}-2", ["urgent"])
            await publish_tagged(notifier_settings, [later])
            await alerts_at(receiver, "/hook", 3)

    alerts = await mongo_db["alerts"].find({}, {"_id": 0, "alert_id": 1}).to_list(None)
    assert sorted(a["alert_id"] for a in alerts) == sorted(
        [f"{run_id}-1:support", f"{run_id}-1:vip-desk", f"{run_id}-2:support"]
    )
    ids = [a["alert_id"] for r in receiver.at("/hook") for a in json.loads(r.body)["alerts"]]
    assert sorted(ids) == sorted(a["alert_id"] for a in alerts)
    published = await read_topic(
        notifier_settings, notifier_settings.topics.alerts, 3, extra_wait=1
    )
    assert sorted(Alert.model_validate_json(r.value).alert_id for r in published) == sorted(ids)


async def test_a_restart_right_after_a_delivery_sends_nothing_again(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with http_receiver() as receiver:
        receiver.answer_delay_s = 0.3  # the stop comes while the channel is still answering
        path = routing_file(
            tmp_path,
            [{"id": "hook", "type": "webhook", "url": f"{receiver.url}/hook", "unsigned": True}],
            ["hook"],
        )
        async with notifier(notifier_settings, path):
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-1", ["urgent"])])
            await count_at(receiver, "/hook", 1)
        receiver.answer_delay_s = 0
        async with notifier(notifier_settings, path):  # resumes what the store shows pending
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-2", ["urgent"])])
            await alerts_at(receiver, "/hook", 2)

    ids = [a["alert_id"] for r in receiver.at("/hook") for a in json.loads(r.body)["alerts"]]
    assert sorted(ids) == [f"{run_id}-1:support", f"{run_id}-2:support"]
    first = await mongo_db["alerts"].find_one({"alert_id": f"{run_id}-1:support"})
    assert first is not None
    assert first["deliveries"][0]["status"] == "delivered"
    assert first["deliveries"][0]["attempts"] == 1


async def test_failing_channel_is_retried_then_marked_failed_without_blocking_others(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with http_receiver() as broken, http_receiver() as healthy:
        broken.fail_first = 1000
        channels = [
            {"id": "broken", "type": "webhook", "url": f"{broken.url}/b", "unsigned": True},
            {"id": "healthy", "type": "webhook", "url": f"{healthy.url}/h", "unsigned": True},
        ]
        path = routing_file(tmp_path, channels, ["broken", "healthy"])
        async with notifier(notifier_settings, path):
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-1", ["urgent"])])
            await count_at(healthy, "/h", 1)

            async def marked_failed() -> bool:
                alert = await mongo_db["alerts"].find_one({"alert_id": f"{run_id}-1:support"})
                return bool(alert) and alert["deliveries"][0]["status"] == "failed"

            await eventually(marked_failed, within=30)

    assert len(broken.at("/b")) == notifier_settings.notifier_retry_attempts
    attempts = await mongo_db["delivery_attempts"].find({"channel": "broken"}).to_list(None)
    assert [a["status"] for a in attempts] == ["error"] * notifier_settings.notifier_retry_attempts
    assert all(a["latency_ms"] >= 0 and "HTTP 500" in a["error"] for a in attempts)


async def test_alerts_over_the_rate_limit_arrive_as_one_digest(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    run_id: str,
) -> None:
    async with http_receiver() as receiver:
        path = routing_file(
            tmp_path,
            [
                {
                    "id": "robot",
                    "type": "wecom",
                    "url": f"{receiver.url}/robot",
                    "rate_per_minute": 20,
                }
            ],
            ["robot"],
        )
        async with notifier(notifier_settings, path):
            events = [tagged_event(f"{run_id}-{i}", ["urgent"]) for i in range(6)]
            await publish_tagged(notifier_settings, events[:1])
            await count_at(receiver, "/robot", 1)
            await publish_tagged(notifier_settings, events[1:])
            await count_at(receiver, "/robot", 2)

    contents = [json.loads(r.body)["markdown"]["content"] for r in receiver.at("/robot")]
    assert contents[1].startswith("### 5 条 ordertag 告警")
    assert all(f"{run_id}-{i}" in contents[1] for i in range(1, 6))


async def test_unacknowledged_urgent_alert_is_escalated_once_and_acknowledged_one_is_not(
    notifier_settings: NotifierSettings,
    tmp_path: Path,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    async with http_receiver() as receiver:
        channels = [
            {"id": "escalate", "type": "webhook", "url": f"{receiver.url}/esc", "unsigned": True}
        ]
        path = routing_file(
            tmp_path,
            channels,
            [],
            escalation={"after_minutes": 0.02, "kinds": ["urgent"], "channels": ["escalate"]},
        )
        async with notifier(notifier_settings, path) as app:
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-ack", ["urgent"])])

            async def stored() -> bool:
                return await mongo_db["alerts"].count_documents({}) == 1

            await eventually(stored)
            await app.state.notifier.store.acknowledge(f"{run_id}-ack:support", "ana")
            await publish_tagged(notifier_settings, [tagged_event(f"{run_id}-open", ["urgent"])])
            [escalated] = await count_at(receiver, "/esc", 1)
            assert await app.state.notifier.alerting.escalate_due() == 0  # never twice

    body = json.loads(escalated.body)
    assert body["type"] == "ordertag.alert.escalated"
    assert [a["alert_id"] for a in body["alerts"]] == [f"{run_id}-open:support"]
    assert len(receiver.at("/esc")) == 1

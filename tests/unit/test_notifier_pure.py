"""Routing decisions and channel message formats (no servers)."""

import json
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from services.notifier.channels import (
    Message,
    dingtalk_signed_url,
    email_message,
    http_request,
    sign_webhook,
    verify_webhook,
)
from services.notifier.routing import (
    DingTalkChannel,
    EmailChannel,
    QuietHours,
    RoutingFileError,
    SlackChannel,
    WebhookChannel,
    WeComChannel,
    load_routing,
)
from services.notifier.settings import DEFAULT_ROUTING_FILE, NotifierSettings
from shared.events import (
    Alert,
    AlertKind,
    AppliedTag,
    OrderFacts,
    OrderTagged,
    OrderTaggedAsRead,
    Severity,
    TagSource,
)
from shared.models import OrderStatus
from tests.notifier_fakes import as_read

NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)


def tag(name: str, reason: str = "because") -> AppliedTag:
    return AppliedTag(
        name=name, source=TagSource.RULE, rule_id="r", rule_version=1, reason=reason, at=NOW
    )


def tagged(added: list[str], kept: list[str] = ()) -> OrderTaggedAsRead:  # type: ignore[assignment]
    added_tags = [tag(n, f"{n} reason") for n in added]
    event = OrderTagged(
        source_event_id="6f1c1d9e-3f7a-4d59-9a43-0e0b6b1f2c11",
        order_no="SO-9",
        customer_id="C-7",
        tags_added=added_tags,
        tags=added_tags + [tag(n) for n in kept],
        facts=OrderFacts(
            status=OrderStatus.PENDING,
            total=Decimal("5200.00"),
            currency="CNY",
            customer_tier="vip",
        ),
    )
    return as_read(event)


def alert() -> Alert:
    return Alert(
        alert_id="SO-9:urgent",
        kind=AlertKind.URGENT,
        severity=Severity.CRITICAL,
        order_no="SO-9",
        customer_id="C-7",
        customer_tier="vip",
        amount=Decimal("5200.00"),
        currency="CNY",
        tags=["urgent", "vip"],
        reasons=["same_day shipping → urgent"],
        order_url="http://x/orders/SO-9",
        created_at=NOW,
    )


ROUTING = load_routing(DEFAULT_ROUTING_FILE)


def test_a_routing_file_naming_an_unknown_channel_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "routes: [{id: r, kind: urgent, severity: critical, team: t, "
        "when_tags_any: [urgent], channels: [nope]}]"
    )

    with pytest.raises(RoutingFileError, match="route 'r': unknown channel 'nope'"):
        load_routing(path)


def test_a_routing_file_with_a_bad_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("channels: [{id: w, type: webhook, url: ftp://x}]")

    with pytest.raises(RoutingFileError, match=r"channels\.0\.webhook\.url"):
        load_routing(path)


def test_webhook_signature_verifies_and_tampering_fails() -> None:
    body = b'{"alerts": []}'
    header = sign_webhook("s3cret", int(time.time()), body)

    assert verify_webhook("s3cret", header, body)
    assert not verify_webhook("s3cret", header, body + b" ")
    assert not verify_webhook("other", header, body)
    assert not verify_webhook("s3cret", sign_webhook("s3cret", int(time.time()) - 3600, body), body)


def test_webhook_request_is_signed_json_with_an_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    channel = WebhookChannel(id="w", type="webhook", url="http://h/", secret_env="HOOK_SECRET")

    _, headers, body = http_request(channel, Message((alert(),)), time.time())

    assert verify_webhook("s3cret", headers["Ordertag-Signature"], body)
    assert headers["Idempotency-Key"] == "SO-9:urgent"
    assert json.loads(body)["alerts"][0]["order_no"] == "SO-9"


def test_dingtalk_url_carries_timestamp_and_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DT_SECRET", "SEC123")
    channel = DingTalkChannel(
        id="d", type="dingtalk", url="http://h/robot/send?access_token=t", secret_env="DT_SECRET"
    )

    url, _, body = http_request(channel, Message((alert(),)), 1_700_000_000.0)

    assert url == dingtalk_signed_url(
        "http://h/robot/send?access_token=t", "SEC123", 1_700_000_000_000
    )
    assert "&timestamp=1700000000000&sign=" in url
    payload = json.loads(body)
    assert payload["msgtype"] == "markdown"
    assert "SO-9" in payload["markdown"]["text"]


def test_wecom_and_slack_get_their_own_formats() -> None:
    wecom = WeComChannel(id="c", type="wecom", url="http://h/")
    slack = SlackChannel(id="s", type="slack", url="http://h/")

    _, _, wecom_body = http_request(wecom, Message((alert(),)), 0)
    _, _, slack_body = http_request(slack, Message((alert(),)), 0)

    assert json.loads(wecom_body)["markdown"]["content"].startswith(
        "### [严重] 紧急 订单 SO-9"  # the Chinese robots speak Chinese unless told otherwise
    )
    assert json.loads(slack_body)["blocks"][0]["type"] == "section"


def test_a_channel_speaks_its_configured_language_with_the_catalog_labels() -> None:
    english = WeComChannel(id="c", type="wecom", url="http://h/", language="en")
    chinese = DingTalkChannel(id="d", type="dingtalk", url="http://h/")

    _, _, english_body = http_request(english, Message((alert(),)), 0)
    _, _, chinese_body = http_request(chinese, Message((alert(),), escalation=True), 0)

    assert json.loads(english_body)["markdown"]["content"].startswith(
        "### [critical] urgent order SO-9"
    )
    chinese_text = json.loads(chinese_body)["markdown"]
    assert chinese_text["title"] == "【升级】[严重] 紧急 订单 SO-9"
    assert "客户 C-7 (VIP客户)" in chinese_text["text"]


def test_a_digest_titles_the_count_and_lists_every_alert() -> None:
    message = Message((alert(), alert().model_copy(update={"order_no": "SO-10"})))

    assert message.title == "2 ordertag alerts"
    assert len(message.lines()) == 2


def test_a_digest_says_the_same_whatever_order_its_alerts_came_in() -> None:
    """An interrupted claim is sent again from the alerts as the store reads them back: the
    body under its idempotency key must be the first attempt's."""
    alerts = [
        alert().model_copy(
            update={
                "alert_id": f"SO-{i}:urgent",
                "order_no": f"SO-{i}",
                "created_at": NOW + timedelta(seconds=i % 3),
            }
        )
        for i in range(6)
    ]
    first = Message(tuple(alerts), key="k")
    again = Message(tuple(reversed(alerts)), key="k")

    assert first.lines() == again.lines()
    assert [a.order_no for a in first.alerts] == ["SO-0", "SO-3", "SO-1", "SO-4", "SO-2", "SO-5"]

    # raised within a millisecond of each other, read back with the milliseconds MongoDB keeps
    close = [
        a.model_copy(update={"created_at": NOW + timedelta(microseconds=300 * (6 - i))})
        for i, a in enumerate(alerts)
    ]
    read_back = [
        a.model_copy(update={"created_at": a.created_at.replace(microsecond=ms * 1000)})
        for a in reversed(close)
        for ms in [a.created_at.microsecond // 1000]
    ]
    assert Message(tuple(close)).lines() == Message(tuple(read_back)).lines()


def test_a_digest_idempotency_key_stays_short_whatever_its_size() -> None:
    many = tuple(alert().model_copy(update={"alert_id": f"SO-{i}:urgent"}) for i in range(500))

    key = Message(many).idempotency_key

    assert key.startswith("digest-")
    assert len(key) < 100
    assert key == Message(tuple(reversed(many))).idempotency_key
    assert Message((alert(),)).idempotency_key == "SO-9:urgent"


def test_email_has_plain_and_html_parts() -> None:
    channel = EmailChannel(id="m", type="email", smtp_host="h", sender="a@x.cn", to=["b@x.cn"])

    mail = email_message(channel, Message((alert(),)))

    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "SO-9" in plain
    assert "<table" in html
    assert "C-7" in plain


@pytest.mark.parametrize(
    ("local", "inside"),
    [(clock(23, 0), True), (clock(7, 59), True), (clock(8, 0), False), (clock(12, 0), False)],
)
def test_quiet_hours_across_midnight(local: clock, inside: bool) -> None:
    quiet = QuietHours(start=clock(22, 0), end=clock(8, 0), timezone="UTC")
    moment = datetime.combine(NOW.date(), local, tzinfo=UTC)

    assert quiet.contains(moment) is inside


def test_quiet_hours_end_at_the_next_end_time() -> None:
    quiet = QuietHours(start=clock(22, 0), end=clock(8, 0), timezone="UTC")

    assert quiet.ends_after(datetime(2026, 11, 24, 23, tzinfo=UTC)) == datetime(
        2026, 11, 25, 8, tzinfo=UTC
    )


def test_alert_links_url_encode_the_order_number() -> None:
    from services.notifier.routing import order_url

    assert order_url("https://shop.example/orders/", "A/../../x?y#z") == (
        "https://shop.example/orders/A%2F..%2F..%2Fx%3Fy%23z"
    )
    assert order_url("https://shop.example/orders", "SO 1") == "https://shop.example/orders/SO%201"


def test_alerts_link_to_the_consoles_order_page_unless_a_deployment_names_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person clicking an alert's link in a chat or an e-mail gets the console's order page
    (not the Tag API's JSON), on the port the tagger runs on; an order URL base set on purpose
    wins over the console's URL."""
    from services.notifier.routing import order_url

    for name in ("NOTIFIER_ORDER_URL_BASE", "NOTIFIER_CONSOLE_URL", "TAGGER_PORT"):
        monkeypatch.delenv(f"ORDERTAG_{name}", raising=False)
    assert NotifierSettings().order_url_base == "http://127.0.0.1:8002/console/orders/"
    monkeypatch.setenv("ORDERTAG_TAGGER_PORT", "8102")  # the demo on ports of its own
    assert order_url(NotifierSettings().order_url_base, "SO 1") == (
        "http://127.0.0.1:8102/console/orders/SO%201"
    )
    monkeypatch.setenv("ORDERTAG_NOTIFIER_CONSOLE_URL", "https://console.shop.example/")
    assert NotifierSettings().order_url_base == "https://console.shop.example/console/orders/"
    monkeypatch.setenv("ORDERTAG_NOTIFIER_ORDER_URL_BASE", "https://shop.example/admin/orders/")
    assert NotifierSettings().order_url_base == "https://shop.example/admin/orders/"


def test_a_webhook_without_a_secret_is_warned_about_and_not_sent_unsigned() -> None:
    from services.notifier.channels import DeliveryError
    from services.notifier.routing import Routing

    silent = WebhookChannel(id="w", type="webhook", url="http://h/")
    said = WebhookChannel(id="u", type="webhook", url="http://h/", unsigned=True)
    routing = Routing(channels=[silent, said])

    assert "'w': webhook without secret_env is not delivered" in routing.warnings()[0]
    assert "'u': webhook delivered unsigned" in routing.warnings()[1]
    with pytest.raises(DeliveryError, match="no secret_env"):
        http_request(silent, Message((alert(),)), time.time())
    _, headers, _ = http_request(said, Message((alert(),)), time.time())
    assert "Ordertag-Signature" not in headers


def test_one_delivery_keeps_its_idempotency_key_and_an_escalation_has_its_own() -> None:
    single = Message((alert(),))
    escalated = Message((alert(),), escalation=True)
    claimed = Message((alert(), alert()), key="digest-from-the-claim")

    assert single.idempotency_key == "SO-9:urgent"
    assert escalated.idempotency_key == "SO-9:urgent:escalated"
    assert claimed.idempotency_key == "digest-from-the-claim"


def test_only_channels_with_an_idempotency_key_resend_interrupted_deliveries() -> None:
    webhook = WebhookChannel(id="w", type="webhook", url="http://h/")
    robot = WeComChannel(id="r", type="wecom", url="http://h/")
    chosen = WeComChannel(id="c", type="wecom", url="http://h/", resend_interrupted=True)

    assert webhook.resends_interrupted
    assert not robot.resends_interrupted
    assert chosen.resends_interrupted


@pytest.mark.parametrize(
    ("error", "maybe_delivered"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("no answer to connect"), False),
        (httpx.PoolTimeout("no connection free"), False),
        (httpx.ReadTimeout("sent, no answer"), True),
        (httpx.RemoteProtocolError("closed without an answer"), True),
    ],
)
async def test_a_send_says_whether_the_channel_may_have_received_it(
    error: httpx.HTTPError, maybe_delivered: bool
) -> None:
    from services.notifier.channels import ChannelSender, DeliveryError, Message

    def transport(request: httpx.Request) -> httpx.Response:
        raise error

    robot = WeComChannel(id="robot", type="wecom", url="http://r/")
    async with httpx.AsyncClient(transport=httpx.MockTransport(transport)) as http:
        with pytest.raises(DeliveryError) as refused:
            await ChannelSender(http).send(robot, Message((alert(),)))
    assert refused.value.maybe_delivered is maybe_delivered


def test_a_claim_renewal_slower_than_half_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="notifier_claim_renew_s"):
        NotifierSettings(notifier_claim_lease_s=15, notifier_claim_renew_s=10)
    assert (
        NotifierSettings().notifier_claim_renew_s * 2 <= NotifierSettings().notifier_claim_lease_s
    )

"""What each channel receives, and sending it.

Message building is pure (tested against local receivers); ``ChannelSender`` does the I/O.
Alerts carry order number, customer id and tier, amount, tags and reasons, and a link: never a
customer's name, phone number or address.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from html import escape
from typing import Any

import aiosmtplib
import httpx
from pydantic_core import to_json

from services.notifier.routing import (
    AnyChannel,
    DingTalkChannel,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    WeComChannel,
)
from services.notifier.wording import Wording, wording
from shared.events import Alert, AlertStatus, to_millisecond

SIGNATURE_HEADER = "Ordertag-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(Exception):
    """The channel refused or did not answer; worth retrying. ``maybe_delivered``: the request
    went out and no answer came (a read timeout, a dropped connection), so the channel may have
    shown it: a channel without an idempotency key must not be sent it again."""

    def __init__(self, message: str, *, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


# The request was sent in full and the answer never came: the receiver may have acted on it.
# (A connect error, a pool timeout or a request cut off while being written never reached it.)
_HTTP_AFTER_SENDING = (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError)
_SMTP_NOT_SENT = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPResponseException)


def _send_order(alert: Alert) -> tuple[datetime, str]:
    """Oldest first, to the millisecond: what MongoDB keeps of a time, so an alert read back
    sorts as it did when it was raised."""
    return to_millisecond(alert.created_at), alert.alert_id


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery: a single alert, or a digest of several when the channel is rate limited."""

    alerts: tuple[Alert, ...]
    escalation: bool = False
    key: str | None = None  # the idempotency key it was claimed with, once claimed

    def __post_init__(self) -> None:
        # one order whatever order the alerts came in (oldest first): a claim a crash
        # interrupted is sent again from the alerts as the store reads them back, under the
        # same idempotency key, and must say what the first attempt said
        object.__setattr__(self, "alerts", tuple(sorted(self.alerts, key=_send_order)))

    @property
    def title(self) -> str:
        return self.title_in(wording("en"))

    def title_in(self, w: Wording) -> str:
        prefix = w.word("escalated") if self.escalation else ""
        if len(self.alerts) == 1:
            prefix += _change_word(self.alerts[0], w)
            alert = self.alerts[0]
            return (
                f"{prefix}[{w.severity(alert)}] {w.kind(alert)} {w.word('order')} {alert.order_no}"
            )
        return prefix + w.word("digest", n=len(self.alerts))

    def lines(self, w: Wording | None = None) -> list[str]:
        w = w or wording("en")
        return [
            f"{_change_word(a, w)}{w.severity(a).upper()} {w.kind(a)}:"
            f" {w.word('order')} {a.order_no},"
            f" {w.word('customer')} {a.customer_id} ({w.tier(a)}),"
            f" {a.amount} {a.currency}; {w.word('tags')} {', '.join(map(w.tag, a.tags))};"
            f" {w.word('why')}: {'; '.join(a.reasons) or '—'}; {a.order_url}"
            for a in self.alerts
        ]

    def markdown(self, w: Wording | None = None) -> str:
        w = w or wording("en")
        items = [
            f"**{_change_word(a, w)}{w.severity(a).upper()} {w.kind(a)}**"
            f" [{a.order_no}]({a.order_url})\n"
            f"> {w.word('customer')} {a.customer_id} ({w.tier(a)}),"
            f" {a.amount} {a.currency}\n"
            f"> {'; '.join(a.reasons) or ', '.join(map(w.tag, a.tags))}"
            for a in self.alerts
        ]
        return f"### {self.title_in(w)}\n" + "\n\n".join(items)

    @property
    def idempotency_key(self) -> str:
        """What a receiver deduplicates on, the same on every send of this delivery: the key it
        was claimed with; before that, the alert id (``:escalated`` for an escalation), or for a
        digest a hash of its alert ids (bounded, whatever its size)."""
        if self.key is not None:
            return self.key
        suffix = ":escalated" if self.escalation else ""
        if len(self.alerts) == 1:
            return _revision_key(self.alerts[0]) + suffix
        ids = ",".join(sorted(_revision_key(a) for a in self.alerts))
        return f"digest-{hashlib.sha256(ids.encode()).hexdigest()}{suffix}"

    def webhook_body(self) -> bytes:
        """The webhook's JSON, from pydantic-core's encoder straight off the alerts (what
        ``json.dumps`` of their ``model_dump`` gives, less the spaces; ~4x faster)."""
        return to_json(
            {
                "type": "ordertag.alert.escalated" if self.escalation else "ordertag.alert",
                # per alert: its status (open, acknowledged, resolved) and revision say the change
                "alerts": self.alerts,
            }
        )


def _revision_key(alert: Alert) -> str:
    """The first telling of an alert keeps its id as key; each later change has its own."""
    return alert.alert_id if alert.revision == 1 else f"{alert.alert_id}:r{alert.revision}"


def _change_word(alert: Alert, w: Wording) -> str:
    if alert.status is AlertStatus.RESOLVED:
        return w.word("resolved")
    return w.word("updated") if alert.revision > 1 else ""


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` (Stripe-style)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    """What a receiver runs (docs/notifier.md): the signature matches and is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign_webhook(secret, timestamp, body).split("v1=")[1]
    fresh = abs(time.time() - timestamp) <= tolerance_s
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signing: base64(HMAC-SHA256(secret, "<ms>\\n<secret>")), URL-encoded."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    sign = urllib.parse.quote_plus(base64.b64encode(mac.digest()))
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp_ms}&sign={sign}"


def http_request(
    channel: AnyChannel, message: Message, now: float
) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) for the HTTP channels."""
    headers = {"content-type": "application/json"}
    w = wording(channel.message_language)
    if isinstance(channel, WebhookChannel):
        body = message.webhook_body()
        headers[IDEMPOTENCY_HEADER] = message.idempotency_key
        if channel.secret_env:
            headers[SIGNATURE_HEADER] = sign_webhook(_secret(channel.secret_env), int(now), body)
        elif not channel.unsigned:
            raise DeliveryError(
                f"{channel.id}: no secret_env to sign with; set it, or unsigned: true"
            )
        return channel.url, headers, body
    if isinstance(channel, WeComChannel):
        payload: dict[str, Any] = {
            "msgtype": "markdown",
            "markdown": {"content": message.markdown(w)},
        }
        return channel.url, headers, json.dumps(payload, ensure_ascii=False).encode()
    if isinstance(channel, DingTalkChannel):
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": message.title_in(w), "text": message.markdown(w)},
        }
        url = channel.url
        if channel.secret_env:
            url = dingtalk_signed_url(url, _secret(channel.secret_env), int(now * 1000))
        return url, headers, json.dumps(payload, ensure_ascii=False).encode()
    if isinstance(channel, SlackChannel):
        payload = {
            "text": message.title_in(w),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": line}}
                for line in message.lines(w)
            ],
        }
        return channel.url, headers, json.dumps(payload, ensure_ascii=False).encode()
    raise TypeError(f"{channel.id} is not an HTTP channel")


def email_message(channel: EmailChannel, message: Message) -> EmailMessage:
    w = wording(channel.message_language)
    mail = EmailMessage()
    mail["Subject"] = f"ordertag: {message.title_in(w)}"
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail.set_content("\n".join(message.lines(w)))
    rows = "".join(
        f"<tr><td><b>{escape(w.severity(a))}</b></td><td>{escape(w.kind(a))}</td>"
        f'<td><a href="{escape(a.order_url)}">{escape(a.order_no)}</a></td>'
        f"<td>{escape(a.customer_id)} ({escape(w.tier(a))})</td>"
        f"<td>{escape(str(a.amount))} {escape(a.currency)}</td>"
        f"<td>{escape('; '.join(a.reasons))}</td></tr>"
        for a in message.alerts
    )
    mail.add_alternative(
        f"<h3>{escape(message.title_in(w))}</h3><table border=1 cellpadding=4>"
        "<tr><th>severity</th><th>kind</th><th>order</th><th>customer</th><th>amount</th>"
        f"<th>why</th></tr>{rows}</table>",
        subtype="html",
    )
    return mail


def _secret(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise DeliveryError(f"secret variable {variable} is not set")
    return value


class ChannelSender:
    def __init__(self, http: httpx.AsyncClient, timeout_s: float = 10.0) -> None:
        self._http = http
        self._timeout_s = timeout_s

    async def send(self, channel: AnyChannel, message: Message) -> None:
        if isinstance(channel, EmailChannel):
            await self._send_email(channel, message)
            return
        url, headers, body = http_request(channel, message, time.time())
        try:
            answer = await self._http.post(
                url, content=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as error:
            raise DeliveryError(
                f"{channel.id}: {error!r}",
                maybe_delivered=isinstance(error, _HTTP_AFTER_SENDING),
            ) from error
        if answer.status_code >= 300:
            raise DeliveryError(f"{channel.id}: HTTP {answer.status_code}")
        if isinstance(channel, WeComChannel | DingTalkChannel):
            code = _json_or_empty(answer).get("errcode", 0)
            if code != 0:
                raise DeliveryError(f"{channel.id}: robot answered errcode {code}")

    async def _send_email(self, channel: EmailChannel, message: Message) -> None:
        username = os.environ.get(channel.username_env) if channel.username_env else None
        password = os.environ.get(channel.password_env) if channel.password_env else None
        try:
            await aiosmtplib.send(
                email_message(channel, message),
                hostname=channel.smtp_host,
                port=channel.smtp_port,
                start_tls=channel.starttls,
                username=username,
                password=password,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPException as error:
            raise DeliveryError(
                f"{channel.id}: {error}", maybe_delivered=not isinstance(error, _SMTP_NOT_SENT)
            ) from error


def _json_or_empty(answer: httpx.Response) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

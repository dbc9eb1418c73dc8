"""Local receivers that stand in for webhooks, chat robots and a mail server in tests."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as Mail
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from bench.harness import free_port


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    robot_errcode: int = 0
    answer_delay_s: float = 0.0  # a slow receiver: the request arrived, the answer is late
    hold: asyncio.Event | None = None  # a stuck receiver: answers once this is set

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def by_idempotency_key(self, path: str) -> dict[str, list[Received]]:
        """What a receiver that honours ``Idempotency-Key`` keeps: one delivery per key (the
        list holds every request that carried it)."""
        keys: dict[str, list[Received]] = {}
        for request in self.at(path):
            keys.setdefault(request.headers.get("Idempotency-Key", ""), []).append(request)
        return keys


@asynccontextmanager
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    port = free_port()
    receiver = HttpReceiver(url=f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        receiver.requests.append(
            Received(request.path, dict(request.query), dict(request.headers), await request.read())
        )
        if receiver.answer_delay_s:
            await asyncio.sleep(receiver.answer_delay_s)
        if receiver.hold is not None:
            await receiver.hold.wait()
        if receiver.fail_first > 0:
            receiver.fail_first -= 1
            return web.Response(status=500, text="down")
        return web.json_response({"errcode": receiver.robot_errcode, "errmsg": "ok"})

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[int, list[Mail]]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield port, inbox.mails
    finally:
        await asyncio.to_thread(controller.stop)

"""The support page's defences on the real stack: same-origin forms, revocation at logout, the
Secure cookie outside local mode, limits per key and per address."""

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from services.notifier.app import create_app
from services.notifier.security import UnsafeConfiguration
from services.notifier.settings import NotifierSettings, Role
from shared.auth import API_KEY_HEADER, ApiKey, Scope, hash_key
from shared.ratelimit import WINDOW_S
from shared.settings import Environment, Settings
from tests.integration.conftest import running
from tests.integration.test_notifier import routing_file

pytestmark = pytest.mark.integration
STRONG_SECRET = "k3v9-Qz7s1Jm4Lx0Pw8Rt6Yb2Nc5Hd1Ge9Fa3Ui7Oo"
SITE = "http://notifier.test"


def page_settings(settings: Settings, tmp_path: Path, **changes: object) -> NotifierSettings:
    return NotifierSettings(
        **{
            **settings.model_dump(),
            "notifier_role": Role.WEB,
            "notifier_routing_file": routing_file(tmp_path, [], []),
            "notifier_session_secret": STRONG_SECRET,
            **changes,
        }
    )


@asynccontextmanager
async def browser(settings: NotifierSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The page in-process, seen from an address of its own (limits count per address)."""
    app = create_app(settings)
    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with running(app), httpx.AsyncClient(transport=transport, base_url=SITE) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, origin: str = SITE) -> httpx.Response:
    return await client.post(
        "/login", data={"api_key": "ordertag-local-dev-key"}, headers={"Origin": origin}
    )


async def test_a_sign_in_posted_from_another_site_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    async with browser(page_settings(settings, tmp_path)) as client:
        forged = await sign_in(client, origin="https://evil.example")
        genuine = await sign_in(client)

    assert forged.status_code == 403
    assert "ordertag_session" not in forged.cookies
    assert genuine.status_code == 303
    assert "ordertag_session" in genuine.cookies


async def test_a_logged_out_cookie_stops_working(settings: Settings, tmp_path: Path) -> None:
    async with browser(page_settings(settings, tmp_path)) as client:
        await sign_in(client)
        cookie = client.cookies["ordertag_session"]
        before = await client.get("/api/alerts")
        await client.post("/logout", headers={"Origin": SITE})
        client.cookies.set("ordertag_session", cookie)  # a copy kept by someone else
        after = await client.get("/api/alerts")

    assert before.status_code == 200
    assert after.status_code == 401


@pytest.mark.parametrize(
    ("env", "secure"), [(Environment.LOCAL, False), (Environment.PRODUCTION, True)]
)
async def test_the_session_cookie_is_secure_outside_local_mode(
    settings: Settings, tmp_path: Path, env: Environment, secure: bool
) -> None:
    async with browser(page_settings(settings, tmp_path, env=env)) as client:
        answer = await sign_in(client)

    assert ("secure" in answer.headers["set-cookie"].lower()) is secure


@pytest.mark.parametrize(
    "secret", ["change-me-in-production", "REPLACE_WITH_A_LONG_RANDOM_STRING", "", "short"]
)
def test_production_refuses_a_known_or_weak_session_secret(
    settings: Settings, tmp_path: Path, secret: str
) -> None:
    unsafe = page_settings(settings, tmp_path, env=Environment.PRODUCTION).model_copy(
        update={"notifier_session_secret": secret}
    )

    with pytest.raises(UnsafeConfiguration, match="SESSION_SECRET"):
        create_app(unsafe)


async def fresh_sign_in_window(redis: Redis) -> None:
    """Sign-ins are counted per address and minute in the Redis every test shares: this test's
    four are the first of a minute they all fall in (another test's, a moment before, made the
    third one the limit's)."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < 5:
        await asyncio.sleep(left + 0.1)
    counted = [key async for key in redis.scan_iter("ratelimit:{notifier:login:*")]
    if counted:
        await redis.delete(*counted)


async def test_sign_in_attempts_are_limited_per_address(
    settings: Settings, tmp_path: Path, redis_client: Redis
) -> None:
    limited = page_settings(settings, tmp_path, notifier_login_rate_per_minute=3)
    await fresh_sign_in_window(redis_client)
    async with browser(limited) as client:
        answers = [
            await client.post("/login", data={"api_key": "wrong"}, headers={"Origin": SITE})
            for _ in range(4)
        ]

    assert [a.status_code for a in answers] == [303, 303, 303, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0


async def test_api_requests_are_limited_per_key(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    key = f"key-{run_id}"
    limited = page_settings(
        settings,
        tmp_path,
        notifier_api_rate_per_minute=2,
        api_keys=[ApiKey(name=run_id, sha256=hash_key(key), scopes={Scope.ALERTS})],
    )
    async with browser(limited) as client:
        answers = [await client.get("/api/alerts", headers={API_KEY_HEADER: key}) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert answers[-1].json()["detail"].startswith("over 2 requests")


@pytest.mark.parametrize(
    ("env", "open_"), [(Environment.LOCAL, True), (Environment.PRODUCTION, False)]
)
async def test_api_docs_are_open_in_local_mode_only(
    settings: Settings, tmp_path: Path, env: Environment, open_: bool
) -> None:
    async with browser(page_settings(settings, tmp_path, env=env)) as client:
        docs = await client.get("/docs")
        schema = await client.get("/openapi.json")

    assert (docs.status_code == 200) is open_
    assert (schema.status_code == 200) is open_

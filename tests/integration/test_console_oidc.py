"""The console's sign-in through an OpenID Connect provider: a real one (oidc-provider-mock, an
Authlib-based provider served over HTTP on a free port) in front of the real stack."""

import json
import re
import socket
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from services.console.oidc import STATE_COOKIE
from services.console.sessions import COOKIE
from services.console.settings import ConsoleSettings
from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from tests.integration.conftest import api_client
from tests.integration.console_browser import shot
from tests.integration.servers import served_app
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.integration,
    # the provider (not ordertag) calls an Authlib server API that Authlib deprecates
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]
CLIENT_ID = "ordertag-console"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    # the provider imports Authlib modules Authlib deprecates; Authlib's own module puts an
    # "always" filter first when imported, so it is imported before the filter that hides them
    import authlib.deprecate  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from oidc_provider_mock import run_server_in_thread
    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


def _console_app(tagger_settings: TaggerSettings, issuer: str) -> Any:
    app = create_app(tagger_settings)
    app.state.console_settings = ConsoleSettings(
        console_oidc_issuer=issuer,
        console_oidc_client_id=CLIENT_ID,
        console_oidc_client_secret="console-secret",
        console_oidc_label="公司账号",
    )
    return app


@pytest.fixture
async def console(tagger_settings: TaggerSettings, issuer: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(_console_app(tagger_settings, issuer), key=None) as client:
        yield client


async def person(issuer: str, sub: str, claims: dict[str, Any]) -> None:
    """The provider's account for ``sub``, with these claims."""
    async with httpx.AsyncClient() as http:
        stored = await http.put(f"{issuer}/users/{sub}", json=claims)
        assert stored.status_code == 204, stored.text


async def through_provider(console: httpx.AsyncClient, sub: str, next: str) -> httpx.Response:
    """Click the sign-in button, sign in at the provider as ``sub``, follow it back: answers the
    console's answer to the provider's redirect."""
    login = await console.get("/console/login")
    assert 'id="oidc-sign-in"' in login.text
    assert "使用 公司账号 登录" in login.text or "Sign in with 公司账号" in login.text
    start = await console.get("/console/login/oidc", params={"next": next})
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    async with httpx.AsyncClient() as browser_at_provider:
        decided = await browser_at_provider.post(authorize, data={"sub": sub})
    assert decided.status_code in (302, 303), decided.text
    back = decided.headers["location"]
    assert back.startswith("http://app/console/login/oidc/callback?"), back
    return await console.get(back.removeprefix("http://app"))


def boot_of(page: httpx.Response) -> dict[str, Any]:
    found = re.search(r'<script id="boot" type="application/json">(.*?)</script>', page.text)
    assert found is not None
    boot: dict[str, Any] = json.loads(found.group(1))
    return boot


async def test_a_company_account_signs_in_with_the_role_its_groups_map_to(
    console: httpx.AsyncClient, issuer: str, run_id: str
) -> None:
    sub = f"sub-{run_id}"
    await person(
        issuer,
        sub,
        {"preferred_username": f"li.wei-{run_id}", "groups": ["staff", "ordertag-agent"]},
    )
    back = await through_provider(console, sub, "/console/tags")

    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/console/tags"
    assert COOKIE in console.cookies
    page = await console.get("/console/tags")
    assert page.status_code == 200
    boot = boot_of(page)
    assert boot["user"] == f"li.wei-{run_id}"
    assert boot["role"] == "agent"
    assert boot["canTag"] is True
    assert boot["canAdmin"] is False
    assert (await console.get("/orders", params={"limit": 1})).status_code == 200


async def test_the_highest_mapped_group_wins_and_the_email_names_a_person_without_username(
    console: httpx.AsyncClient, issuer: str, run_id: str
) -> None:
    sub = f"sub-{run_id}"
    await person(issuer, sub, {"email": f"boss-{run_id}@example.com", "groups": "ordertag-admin"})
    back = await through_provider(console, sub, "/console/")

    assert back.status_code == 303, back.text
    boot = boot_of(await console.get("/console/"))
    assert boot["user"] == f"boss-{run_id}@example.com"
    assert boot["role"] == "admin"


async def test_a_company_account_in_no_ordertag_group_is_refused(
    console: httpx.AsyncClient, issuer: str, run_id: str
) -> None:
    sub = f"sub-{run_id}"
    await person(issuer, sub, {"preferred_username": f"temp-{run_id}", "groups": ["staff"]})
    back = await through_provider(console, sub, "/console/")

    assert back.status_code == 403
    assert "ordertag" in back.text  # says which group to ask for
    assert COOKIE not in console.cookies
    assert (await console.get("/orders")).status_code == 401


async def test_a_provider_answer_is_used_once_and_only_by_the_browser_that_asked(
    console: httpx.AsyncClient, issuer: str, run_id: str
) -> None:
    sub = f"sub-{run_id}"
    await person(issuer, sub, {"preferred_username": f"wang-{run_id}", "groups": "ordertag-viewer"})
    start = await console.get("/console/login/oidc")
    state_cookie = console.cookies[STATE_COOKIE]
    async with httpx.AsyncClient() as provider_side:
        decided = await provider_side.post(start.headers["location"], data={"sub": sub})
    callback = decided.headers["location"].removeprefix("http://app")

    console.cookies.delete(STATE_COOKIE)  # another browser: the state is not bound to it
    planted = await console.get(callback)
    assert planted.status_code == 403
    assert COOKIE not in console.cookies

    console.cookies.set(STATE_COOKIE, state_cookie, path="/console/login/oidc/callback")
    assert (await console.get(callback)).status_code == 303  # the browser that asked
    console.cookies.delete(COOKIE)
    console.cookies.set(STATE_COOKIE, state_cookie, path="/console/login/oidc/callback")
    replayed = await console.get(callback)
    assert replayed.status_code == 403
    assert COOKIE not in console.cookies


async def test_a_provider_that_does_not_answer_gives_503_with_retry_after(
    tagger_settings: TaggerSettings,
) -> None:
    with socket.socket() as held:  # a bound port nobody listens on: connections are refused
        held.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{held.getsockname()[1]}"
        async with api_client(_console_app(tagger_settings, issuer), key=None) as console:
            answer = await console.get("/console/login/oidc")

    assert answer.status_code == 503
    assert answer.headers["retry-after"].isdigit()
    assert 'name="password"' in answer.text  # the local sign-in stays offered


async def test_staff_sign_in_through_the_provider_in_the_browser(
    tagger_settings: TaggerSettings, issuer: str, run_id: str, tmp_path: Path
) -> None:
    sub, name = f"sub-{run_id}", f"zhang.san-{run_id}"
    await person(issuer, sub, {"preferred_username": name, "groups": ["ordertag-viewer"]})
    async with (
        served_app(_console_app(tagger_settings, issuer)) as url,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1366, "height": 800},
            locale="zh-CN",
            extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        )
        page = await context.new_page()
        await page.goto(f"{url}/console/tags")
        await expect(page).to_have_url(re.compile(r"/console/login\?next="))
        button = page.locator("#oidc-sign-in")
        await expect(button).to_have_text("使用 公司账号 登录")
        await shot(page, "login-oidc", tmp_path, full_page=False)

        await button.click()  # off to the provider's own sign-in form
        await page.fill("input[name=sub]", sub)
        await page.click("button[type=submit]:not([name=action])")

        await expect(page).to_have_url(f"{url}/console/tags")  # back where the person was going
        await expect(page.locator(".topbar .user")).to_have_text(f"{name} · 只读")
        await expect(page.locator("body")).to_have_class("role-viewer")
        await browser.close()

"""The console and the support page on two hosts, as deploy/k8s serves them (api. and support.),
in a real Chromium: one sign-in at the console opens the page when the console's cookies go to a
parent domain of both (ORDERTAG_CONSOLE_COOKIE_DOMAIN), and not without it."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.sessions import COOKIE as CONSOLE_COOKIE
from services.console.users import Role, UserStore
from services.notifier.app import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.notifier.settings import Role as NotifierRole
from services.tagger.app import create_app as tagger_app
from services.tagger.settings import Role as TaggerRole
from services.tagger.settings import TaggerSettings
from shared.settings import Settings
from tests.integration.servers import served_app
from tests.integration.test_notifier import routing_file
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration
DOMAIN = "ordertag.example.com"  # a registered suffix: browsers refuse domain cookies on .test
PASSWORD = "correct horse battery"


@asynccontextmanager
async def two_hosts(
    settings: Settings, tmp_path: Path, run_id: str, cookie_domain: str | None
) -> AsyncIterator[tuple[str, str, Page]]:
    """The console (the tagger's api role) and the support page (the notifier's web role) on
    their own ports, named api.DOMAIN and support.DOMAIN in a browser that resolves both to
    this machine: the console's URL, the page's URL and the browser's page."""
    console = tagger_app(
        TaggerSettings(**settings.model_dump(), tagger_roles=frozenset({TaggerRole.API}))
    )
    async with served_app(console) as console_served:
        console_url = f"http://api.{DOMAIN}:{urlsplit(console_served).port}"
        page_settings = NotifierSettings(
            **settings.model_dump(),
            notifier_role=NotifierRole.WEB,
            notifier_group_id=f"page-{run_id}",
            notifier_routing_file=routing_file(tmp_path, [], []),
            notifier_console_url=console_url,
            console_cookie_domain=cookie_domain,
        )
        async with served_app(notifier_app(page_settings)) as page_served, async_playwright() as pw:
            page_url = f"http://support.{DOMAIN}:{urlsplit(page_served).port}"
            console.state.console_settings = console.state.console_settings.model_copy(
                update={
                    "console_alerts_url": f"{page_url}/",
                    "console_cookie_domain": cookie_domain,
                }
            )
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1"],
            )
            try:
                context = await browser.new_context(extra_http_headers={"Accept-Language": "en"})
                yield console_url, page_url, await context.new_page()
            finally:
                await browser.close()


async def sign_in_at_the_console_from_the_page(page: Page, console_url: str, page_url: str) -> None:
    await page.goto(f"{page_url}/")
    await expect(page).to_have_url(f"{page_url}/login")
    await page.click("#console-sign-in")
    await expect(page).to_have_url(re.compile(re.escape(f"{console_url}/console/login")))
    await page.fill("#name", "agent-zhou")
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")


@pytest.fixture
async def agent(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    if not await users.exists("agent-zhou"):
        await users.create("agent-zhou", Role.AGENT, PASSWORD)


@pytest.mark.usefixtures("agent")
async def test_one_sign_in_at_the_console_opens_the_support_page_on_its_own_host(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    async with two_hosts(settings, tmp_path, run_id, DOMAIN) as (console_url, page_url, page):
        await sign_in_at_the_console_from_the_page(page, console_url, page_url)

        await expect(page).to_have_url(f"{page_url}/")  # back on the alerts, signed in
        await expect(page.locator("#status.live")).to_be_visible(timeout=10_000)
        [cookie] = [c for c in await page.context.cookies() if c["name"] == CONSOLE_COOKIE]
        assert cookie["domain"] == f".{DOMAIN}"
        # the language picked on the page is the console's too
        await page.click("#lang-switch")
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await page.goto(f"{console_url}/console/")
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        # signing out on the page signs out of the console
        await page.goto(f"{page_url}/")
        await page.click("form[action='/console/logout'] button")
        await expect(page).to_have_url(f"{page_url}/login")
        assert CONSOLE_COOKIE not in {c["name"] for c in await page.context.cookies()}
        await page.goto(f"{console_url}/console/")
        await expect(page).to_have_url(re.compile(re.escape(f"{console_url}/console/login")))


@pytest.mark.usefixtures("agent")
async def test_without_the_cookie_domain_the_page_on_another_host_asks_again(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    """What deploy/k8s gave before: the session stays on the console's host."""
    async with two_hosts(settings, tmp_path, run_id, None) as (console_url, page_url, page):
        await sign_in_at_the_console_from_the_page(page, console_url, page_url)

        await expect(page).to_have_url(f"{page_url}/login")

"""The live support page in a real headless Chromium (Debian's, driven by Playwright)."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import free_port
from services.console.sessions import COOKIE as CONSOLE_COOKIE
from services.console.sessions import SessionStore
from services.console.settings import LOCAL_SESSION_SECRET
from services.console.users import Role, User
from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from services.tagger.order_record import OrderRecord
from services.tagger.read_model import ReadModel
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from shared.auth import LOCAL_DEV_KEY
from shared.events import utc_now
from shared.redis import make_redis
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import make_order
from tests.integration.test_notifier import publish_tagged, routing_file, tagged_event
from tests.integration.test_stored_forms import RULES, TEMPLATES

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "support-page.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@asynccontextmanager
async def served(settings: NotifierSettings) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await eventually(started, within=20)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def store_tagged_order(database: AsyncDatabase[dict[str, Any]], order_no: str) -> str:
    """The order as the tagger stores it (its rule set recorded, as a tagger does at start);
    answers the reason of its ``urgent`` tag as the console gives it in English."""
    order = make_order(order_no, shipping={"method": "same_day", "province": "上海"})
    figures = FiguresSnapshot()
    change = merge_tags(
        [],
        decide(RULES, order_facts(order, figures, order.status)),
        exclusive_families=RULES.exclusive_families,
        max_tags=20,
        at=utc_now(),
    )
    record = OrderRecord(order, order.status, change.tags, figures, applied_events=["e-1"])
    store = OrderStore(database, lambda: TEMPLATES)
    await store.ensure_indexes()
    assert await store.save([record], []) == set()
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    await RuleVersions(database).record(text, RULES, by="tagger")
    detail = await ReadModel(database, templates=lambda: TEMPLATES).order(order_no, "en")
    assert detail is not None
    return str(next(t["reason"] for t in detail["tags"] if t["name"] == "urgent"))


async def test_a_new_urgent_order_appears_live_and_can_be_acknowledged(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path, run_id: str
) -> None:
    notifier_settings = NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"page-{run_id}",
        notifier_routing_file=routing_file(tmp_path, [], []),
    )
    async with served(notifier_settings) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        await page.goto(f"{url}/")
        await expect(page).to_have_url(f"{url}/login")  # nothing served without signing in
        await page.fill("#api_key", LOCAL_DEV_KEY)
        await page.click("button[type=submit]")
        await expect(page.locator("#status")).to_have_text("live", timeout=10_000)

        order_no = f"{run_id}-live"
        urgent_because = await store_tagged_order(mongo_db, order_no)
        await publish_tagged(notifier_settings, [tagged_event(order_no, ["urgent", "vip"], "vip")])
        row = page.locator(f"tr[data-id='{order_no}:support']")
        await expect(row).to_be_visible(timeout=15_000)  # arrived without a reload
        await expect(row).to_contain_text("critical")

        await row.locator("text=Claim").click()
        await expect(row).to_contain_text("claimed by local-dev")
        await row.click()
        await expect(page.locator("#detail")).to_contain_text(order_no)
        # the order's tags with their reasons in the reader's language, as the console's
        await expect(page.locator("#detail")).to_contain_text(urgent_because)
        # ORDERTAG_UPDATE_SCREENSHOT=1 refreshes the one in docs/
        shot = (
            DOCS_SCREENSHOT
            if os.environ.get("ORDERTAG_UPDATE_SCREENSHOT")
            else (tmp_path / "support-page.png")
        )
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        await row.locator("text=Acknowledge").click()
        await expect(row).to_be_hidden()  # the default filter shows open alerts only
        await page.select_option("#f-status", "")
        await expect(row).to_contain_text("ack by local-dev")
        await browser.close()


async def test_the_consoles_session_opens_the_api_with_its_csrf_token_and_role(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    notifier_settings = NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"page-{run_id}",
        notifier_routing_file=routing_file(tmp_path, [], []),
    )
    redis = make_redis(settings)
    sessions = SessionStore(redis, LOCAL_SESSION_SECRET, 600)
    agent_cookie, agent = await sessions.open(User(name="agent-li", role=Role.AGENT))
    viewer_cookie, _ = await sessions.open(User(name="viewer-wu", role=Role.VIEWER))
    try:
        async with served(notifier_settings) as url, httpx.AsyncClient(base_url=url) as client:

            async def call(method: str, path: str, cookie: str, **headers: str) -> int:
                client.cookies.set(CONSOLE_COOKIE, cookie)
                answer = await client.request(method, path, headers=headers)
                return answer.status_code

            assert await call("GET", "/api/alerts", agent_cookie) == 200
            assert await call("GET", "/", agent_cookie) == 200  # no second sign-in
            ack = f"/api/alerts/{run_id}:support/ack"
            assert await call("POST", ack, agent_cookie) == 403  # no CSRF token
            assert await call("POST", ack, agent_cookie, **{"X-CSRF-Token": "forged"}) == 403
            assert await call("POST", ack, agent_cookie, **{"X-CSRF-Token": agent.csrf}) == 404
            assert await call("GET", "/api/alerts", viewer_cookie) == 401  # role without alerts
            forged = agent_cookie.split(".")[0] + ".0000"
            assert await call("GET", "/api/alerts", forged) == 401
            await sessions.revoke(agent_cookie)  # signed out at the console
            assert await call("GET", "/api/alerts", agent_cookie) == 401
    finally:
        await redis.aclose()

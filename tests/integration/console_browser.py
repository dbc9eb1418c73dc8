"""What the console's browser tests share: signing in to a page in Debian's Chromium (driven by
Playwright), the password every test user has, screenshots (into docs/console/ with
ORDERTAG_UPDATE_SCREENSHOT=1, else beside the test's files) and the orders a tag is stored on.
The console they sign in to is the ``console_url`` fixture in conftest.py."""

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from pymongo.asynchronous.database import AsyncDatabase

DOCS = Path(__file__).parents[2] / "docs" / "console"
PASSWORD = "correct horse battery"


async def shot(page: Page, name: str, tmp_path: Path, full_page: bool = True) -> None:
    """A full-page screenshot: into docs/console/ when asked, else beside the test's files."""
    folder = DOCS if os.environ.get("ORDERTAG_UPDATE_SCREENSHOT") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000


async def signed_in(
    browser: Browser, url: str, name: str, lang: str = "zh-CN", timezone: str | None = None
) -> Page:
    context = await browser.new_context(
        viewport={"width": 1366, "height": 800},
        locale=lang,
        timezone_id=timezone,
        extra_http_headers={"Accept-Language": f"{lang},zh;q=0.9"},
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: pytest.fail(f"script error: {error}"))
    await page.goto(f"{url}/console/")
    await expect(page).to_have_url(f"{url}/console/login?next=/console/")
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("form button[type=submit]")
    await expect(page.locator("#orders tbody tr").first).to_be_visible(timeout=15_000)
    return page


async def tagged_with(db: AsyncDatabase[dict[str, Any]], tag: str) -> set[str]:
    return {d["order_no"] async for d in db["orders"].find({"tag_names": tag}, {"order_no": 1})}

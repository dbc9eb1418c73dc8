"""A viewer in the console, in Debian's Chromium on the real stack: no edit buttons on the
orders list, an order or the Tags page, and the server refuses the edit the page does not
offer. Its screenshot is docs/console/login.png."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from tests.integration.console_browser import shot, signed_in
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration


async def test_a_viewer_sees_no_edit_buttons_and_the_server_refuses_its_edits(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "viewer")
        assert await page.locator("#bulkbar, #save-view, #select-page").count() == 0
        order_no = await page.locator("#orders tbody tr").first.get_attribute("data-order")
        await page.click(f"#orders a:text-is('{order_no}')")
        await expect(page.locator("#applied li").first).to_be_visible()
        assert await page.locator("#manual, #applied button").count() == 0

        status = await page.evaluate(
            """async (orderNo) => {
                const boot = JSON.parse(document.getElementById("boot").textContent);
                const answer = await fetch(`/orders/${orderNo}/tags`, {method: "POST",
                    headers: {"Content-Type": "application/json", "X-CSRF-Token": boot.csrf},
                    body: JSON.stringify({add: ["urgent"], reason: "try"})});
                return answer.status;
            }""",
            order_no,
        )
        assert status == 403
        await page.goto(f"{console_url}/console/tags")
        await expect(page.locator("#catalog tbody tr").first).to_be_visible()
        assert await page.locator("#create, #catalog [data-action=rename]").count() == 0
        # the page's last read (the unused review) is done: none is in flight when the cookies
        # go, so no 401 redirect races the navigation below
        await expect(page.locator("#unused li").first).to_be_visible()

        await page.context.clear_cookies()
        await page.goto(f"{console_url}/console/login")
        await shot(page, "login", tmp_path)
        await browser.close()

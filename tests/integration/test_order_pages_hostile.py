"""The orders list and an order's page with hostile and overlong values, in Debian's Chromium
on the real stack: markup in a customer's name or an order's notes shows as text, never runs;
a long Chinese name wraps inside its column, and twenty tags keep the order page a phone's
width. (The reports page's charts: test_reports_page_hostile.py.)"""

from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from tests.integration.console_browser import signed_in
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration


async def test_hostile_values_show_as_text_and_long_ones_keep_a_phone_layout(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    hostile = "<img src=x onerror=window.__xss=1>欧阳" + "长名字" * 20
    stored = await mongo_db["orders"].find_one({}, sort=[("created_at", -1)])
    assert stored is not None
    twenty = [
        {**stored["tags"][0], "name": f"tag-{i:02d}-长标签", "source": "manual", "by": "x"}
        for i in range(20)
    ]
    await mongo_db["orders"].update_one(
        {"order_no": stored["order_no"]},
        {
            "$set": {
                "order.customer.name": hostile,
                "order.notes": "<script>window.__xss=2</script>",
                "tags": twenty,
                "tag_names": [t["name"] for t in twenty],
            }
        },
    )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "viewer")
        # the list shows the customer's name; a long Chinese one wraps inside its column
        name_cell = page.locator(f"#orders tr[data-order='{stored['order_no']}'] td.cust")
        await expect(name_cell).to_contain_text("欧阳长名字")
        box = await name_cell.bounding_box()
        assert box is not None
        assert box["width"] <= 260
        await page.set_viewport_size({"width": 390, "height": 800})
        await page.goto(f"{console_url}/console/orders/{stored['order_no']}")
        await expect(page.locator("#fields")).to_contain_text("<img src=x onerror")
        await expect(page.locator("#fields")).to_contain_text("<script>window.__xss=2</script>")
        await expect(page.locator("#applied li")).to_have_count(20)
        assert await page.evaluate("window.__xss") is None
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0  # nothing pushes the page wider than a phone
        await browser.close()

"""The reports page's charts with hostile text in what they draw: a customer's name from a shop's
connector and a tag label an admin typed reach the charts' tooltips (HTML the chart library
writes) and must show as text there, never run."""

from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from tests.integration.console_browser import signed_in
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration

HOSTILE_NAME = "<img src=x onerror=window.__xss=1>欧阳"
HOSTILE_LABEL = "<img src=y onerror=window.__xss=2>急"


async def tooltip_of(page: Page, report: str) -> str:
    """The tooltip the chart shows with the pointer over a bar whose name holds the hostile
    text: the pointer goes down the chart, row by row, until such a tooltip shows."""
    chart = page.locator(f"#{report} .chart")
    box = await chart.bounding_box()
    assert box is not None
    tooltip = chart.locator("div").filter(has_text="onerror")
    for y in range(10, int(box["height"]) - 20, 6):
        await page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + y, steps=2)
        if await tooltip.count() and await tooltip.last.is_visible():
            return await tooltip.last.inner_text()
    raise AssertionError(f"no tooltip of {report} showed the hostile text")


async def test_hostile_names_and_labels_in_the_charts_tooltips_stay_text(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    # every urgent order's customer is named by the connector's hostile text: the top
    # customers' chart (urgent by default) draws it in every bar's label and tooltip
    hostile = await mongo_db["orders"].update_many(
        {"tag_names": "urgent"}, {"$set": {"order.customer.name": HOSTILE_NAME}}
    )
    assert hostile.modified_count > 0
    # the admin's label for 紧急, drawn in the share chart's first bar (urgent or the family's
    # other tag, regular, the most common tag of all: both are labelled so)
    for tag in ("urgent", "regular"):
        await mongo_db["tag_catalog"].update_one(
            {"name": tag},
            {"$set": {"name": tag, "labels": {"zh-CN": HOSTILE_LABEL, "en": HOSTILE_LABEL}}},
            upsert=True,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "viewer")
        await page.goto(f"{console_url}/console/reports")
        for report in ("share", "top-customers", "over-time", "rule-hits"):
            await expect(page.locator(f"#{report}")).not_to_have_attribute("data-rows", "0")
        await expect(page.locator("#top-customers tbody")).to_contain_text(HOSTILE_NAME)
        await expect(page.locator("#share tbody")).to_contain_text(HOSTILE_LABEL)

        assert HOSTILE_NAME in await tooltip_of(page, "top-customers")
        # a tag's label: a bar's name (share), a line's (over time), a rule's tag (rule hits)
        for report in ("share", "over-time", "rule-hits"):
            assert HOSTILE_LABEL in await tooltip_of(page, report)
        # nor did the page build an element from them anywhere (axis labels are canvas text)
        assert await page.locator("img[src=x], img[src=y]").count() == 0
        assert await page.evaluate("window.__xss") is None
        await browser.close()

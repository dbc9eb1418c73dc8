"""The console says what went wrong in the reader's language, by the labels on the page: a
refused orders filter names its fields (最低金额 …) and empties the list. Debian's Chromium
against the tagger on the real stack."""

from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.integration.test_console_browser import console_url, shot, signed_in
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

__all__ = ["console_url"]  # the console's fixture: 120 orders of 15 customers, tagged
pytestmark = pytest.mark.integration

AMOUNT = "请输入金额，如 1200.50（不能为负数，最多两位小数）"
FROM_AFTER_TO = "下单日期从不能晚于下单日期至"


async def test_a_refused_orders_filter_names_its_fields_and_empties_the_list(
    console_url: str, tmp_path: Path
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")
        rows, error = page.locator("#orders tbody tr"), page.locator("#filter-error")
        for filled, said, marked in (
            ({"#f-amin": "abc"}, f"最低金额：{AMOUNT}", "#f-amin"),
            ({"#f-amin": "-5"}, f"最低金额：{AMOUNT}", "#f-amin"),
            ({"#f-amin": "1000", "#f-amax": "10"}, "最低金额不能大于最高金额", "#f-amin"),
            # a to-day before the from-day: refused, not an empty range
            ({"#f-from": "2026-05-02", "#f-to": "2026-05-01"}, FROM_AFTER_TO, "#f-to"),
        ):
            await page.click("#reset")
            await expect(rows.first).to_be_visible()
            for field, value in filled.items():
                await page.fill(field, value)
            await page.click("#apply")
            await expect(error).to_have_text(said)
            await expect(rows).to_have_count(0)  # not the last filter's rows under this one
            await expect(page.locator("#not-queried")).to_be_visible()
            await expect(page.locator("#empty")).to_be_hidden()
            await expect(page.locator(marked)).to_have_attribute("aria-invalid", "true")
        await shot(page, "orders-refused-filter", tmp_path, full_page=False)

        # corrected, the list and the form are as before
        await page.click("#reset")
        await expect(rows.first).to_be_visible()
        await expect(error).to_be_hidden()
        await expect(page.locator("#filters [aria-invalid]")).to_have_count(0)

        english = await signed_in(browser, console_url, "王小明", lang="en")
        await english.fill("#f-amax", "1.234")
        await english.click("#apply")
        await expect(english.locator("#filter-error")).to_have_text(
            "Amount to: enter an amount such as 1200.50 (not negative, at most 2 decimal places)"
        )
        await browser.close()

"""The console says what went wrong in the reader's language, by the labels on the page, and
does not act on what nobody picked: a refused orders filter names its fields (最低金额 …) and
empties the list, the batch bar starts on no tag, and an unknown order is a 404 page. Debian's
Chromium against the tagger on the real stack."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from tests.integration.test_console_browser import console_url, shot, signed_in, tagged_with
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

__all__ = ["console_url"]  # the console's fixture: 120 orders of 15 customers, tagged
pytestmark = pytest.mark.integration

AMOUNT = "请输入金额，如 1200.50（不能为负数，最多两位小数）"
FROM_AFTER_TO = "下单日期从不能晚于下单日期至"
TAG_NAME = "只能使用小写字母、数字、汉字和 - : _ .，以字母、数字或汉字开头，最多 64 个字符"


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


async def test_the_batch_bar_starts_on_no_tag_and_says_why_a_new_name_is_refused(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    before = await tagged_with(mongo_db, "big-customer")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")
        picker, error = page.locator("#bulk-tag"), page.locator("#bulk-error")
        await expect(picker).to_have_value("")
        await expect(picker.locator("option:checked")).to_have_text("请选择标签")

        # every matching order, no tag picked: nothing is asked, nothing is done
        await page.check("#select-filter")
        await page.click("#bulk-add")
        await expect(error).to_have_text("请先选择或输入标签")
        await expect(page.locator("#confirm")).to_be_hidden()

        # a new name that cannot be a tag: why, beside the name, and no question
        await page.fill("#bulk-new", "Bad Tag!")
        await page.click("#bulk-add")
        await expect(error).to_have_text(f"标签名：{TAG_NAME}")
        await expect(page.locator("#bulk-new")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#confirm")).to_be_hidden()
        await shot(page, "orders-bulk-refused", tmp_path, full_page=False)
        await browser.close()
    assert await tagged_with(mongo_db, "big-customer") == before
    assert await mongo_db["tag_catalog"].count_documents({"name": "Bad Tag!"}) == 0


async def test_an_unknown_order_or_customer_is_a_404_page_in_the_readers_words(
    console_url: str,
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")
        answer = await page.goto(f"{console_url}/console/orders/NOPE-1")
        assert answer is not None
        assert answer.status == 404
        await expect(page.locator("#missing")).to_have_text("未找到该订单：NOPE-1")
        assert await page.locator("#manual, #m-tag, #applied, #detail").count() == 0
        answer = await page.goto(f"{console_url}/console/customers/NOPE-C")
        assert answer is not None
        assert answer.status == 404
        await expect(page.locator("#missing")).to_contain_text("未找到该客户：NOPE-C")
        await browser.close()

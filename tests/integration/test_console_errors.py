"""The console says what went wrong in the reader's language, by the labels on the page, and
does not act on what nobody picked: a refused orders filter names its fields (最低金额 …) and
empties the list, the batch bar starts on no tag, the Tags page's refusals are words rather
than the Tag API's developer text, an order page offers 移除 only where the reader may remove,
and an unknown order is a 404 page. Debian's Chromium against the tagger on the real stack."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Dialog, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from tests.integration.console_browser import PASSWORD, shot, signed_in, tagged_with
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

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
        # answers of shapes the page does not expect still read as words, never a script error
        said = await english.evaluate("""() => [
            OT.failure(422, {errors: [null, {field: "reason", problem: "no candidate fits"}]}),
            OT.failure(422, {errors: [{field: null, problem: null}]}),
            OT.failure(403, {detail: "tag 'vip': the role 'agent' may not add it by hand; " +
              "needs one of: manager, admin; tag 'big-customer': the role 'agent' may not add " +
              "it by hand; needs one of: manager, admin"}),
        ].map((e) => [e.message, e.status])""")
        assert said[0] == ["Reason: no candidate fits", 422]  # not "enter a valid date"
        assert said[1][0]  # some words, never an empty red box
        assert "VIP" in said[2][0]
        assert "Big-order customer" in said[2][0]  # both refusals, not the first alone
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


async def test_a_browser_zone_the_server_does_not_know_is_said_in_the_readers_words(
    console_url: str,
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")
        # a browser naming a zone this server's database lacks (a newer one, a typo'd setting)
        await page.add_init_script(
            "const real = Intl.DateTimeFormat.prototype.resolvedOptions;"
            "Intl.DateTimeFormat.prototype.resolvedOptions = function () {"
            " return { ...real.call(this), timeZone: 'Mars/Olympus' }; };"
        )
        await page.goto(f"{console_url}/console/reports")
        await expect(page.locator("#toast")).to_contain_text(
            "无法识别时区「Mars/Olympus」，请检查电脑的时区设置，或联系管理员"
        )
        await browser.close()


async def test_the_tags_page_and_an_order_say_what_is_refused_in_the_readers_words(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    catalog_before = await mongo_db["tag_catalog"].count_documents({})
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")
        await page.goto(f"{console_url}/console/tags")
        await expect(page.locator("#catalog tbody tr").first).to_be_visible()
        asked: list[str] = []

        async def decline(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", decline)
        error = page.locator("#c-error")
        for name, said in (
            ("", "标签名：必填"),
            ("Bad Name", f"标签名：{TAG_NAME}"),
            ("vip", "已有标签「VIP客户 (vip)」"),
            ("紧急", "名称与已有标签 紧急 (urgent) 几乎相同"),  # asked first, declined
        ):
            await page.fill("#c-name", name)
            await page.click("#c-submit")
            await expect(error).to_have_text(said)
            await expect(page.locator("#c-name")).to_have_attribute("aria-invalid", "true")
        assert asked == [
            "「紧急」与已有标签 紧急 (urgent) 几乎相同。\n\n"
            "如果意思相同，请使用或合并到已有标签。仍然保留为单独的标签吗？"
        ]
        await shot(page, "tags-refused", tmp_path, full_page=False)

        # an order offers 移除 where the catalog lets people remove: a priority tag a rule gave
        # (the priority family lets people), never a status a rule gave
        order_no = await page.evaluate(
            "async () => (await OT.api('/orders?all_tags=urgent&none_tags=vip"
            "&none_tags=big-customer&limit=1')).orders[0].order_no"
        )
        await page.goto(f"{console_url}/console/orders/{order_no}")
        applied = page.locator("#applied li")
        await expect(applied.first).to_be_visible()
        await expect(page.locator("#applied li[data-tag='urgent'] button")).to_have_text("移除")
        await expect(page.locator("#applied li[data-tag^='status:'] button")).to_have_count(0)
        await expect(page.locator("#applied li[data-tag^='region:'] button")).to_have_count(0)

        # VIP is the managers' to add and remove: an agent is offered neither
        await page.select_option("#m-tag", "vip")
        await page.fill("#m-reason", "老客户")
        await page.click("#m-add")
        await expect(page.locator("#applied li[data-tag='vip'] button")).to_have_text("移除")
        await UserStore(mongo_db).create("客服小李", Role.AGENT, PASSWORD)
        agent = await signed_in(browser, console_url, "客服小李")
        await agent.goto(f"{console_url}/console/orders/{order_no}")
        await expect(agent.locator("#applied li[data-tag='vip']")).to_be_visible()
        await expect(agent.locator("#applied li[data-tag='vip'] button")).to_have_count(0)
        await expect(agent.locator("#applied li[data-tag='urgent'] button")).to_have_text("移除")
        # nor its add: the picker offers what the agent may add (a managers' tag typed into
        # the batch bar is refused in words: test_console_tags_page)
        await expect(agent.locator("#m-tag option").nth(1)).to_be_attached()
        offered = await agent.locator("#m-tag option").evaluate_all("os => os.map(o => o.value)")
        assert not {"vip", "big-customer", "high-value"} & set(offered), offered
        await browser.close()
    assert await mongo_db["tag_catalog"].count_documents({}) == catalog_before

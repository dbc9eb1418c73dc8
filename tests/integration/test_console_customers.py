"""The console's customers list in a real headless Chromium against the tagger's HTTP process on
the real stack: tag and figure filters, days in the reader's zone, refused filters in the
reader's words, a stale page link, preset and saved views, the CSV export; and from the list, a
customer's page with tags and their reasons, figures, orders and a manual tag. The customers
are customer_console.py's. ORDERTAG_UPDATE_SCREENSHOT=1 refreshes docs/console/customers*.png
and customer.png."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from tests.integration.console_browser import PASSWORD, shot, signed_in
from tests.integration.customer_console import NOW, console_url
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

__all__ = ["console_url"]  # the four customers' console, in place of conftest.py's
pytestmark = pytest.mark.integration


async def test_staff_find_customers_by_tags_and_see_why_a_customer_has_them(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str, tmp_path: Path
) -> None:
    url = console_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": 1366, "height": 860},
            locale="zh-CN",
            extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
        )
        page = await context.new_page()
        page.on("pageerror", lambda error: pytest.fail(f"script error: {error}"))
        await page.goto(f"{url}/console/customers")
        await page.fill("#name", "王小明")
        await page.fill("#password", PASSWORD)
        await page.click("form button[type=submit]")

        rows = page.locator("#customers tbody tr")
        await expect(rows).to_have_count(4)
        # by spend, largest first: 陈静 30,599, 王芳 13,349, 李娜 5,998, 张伟 2,999
        order = [await r.get_attribute("data-customer") for r in await rows.all()]
        assert order == [f"{run_id}-{s}" for s in ("chen", "wang", "li", "zhang")]
        await expect(page.locator("nav.nav")).to_contain_text("客户")
        await shot(page, "customers", tmp_path)

        # a home-goods lover who is not a high spender: all of + none of
        await page.select_option("#f-all_tags", ["prefers:家居"])
        await page.select_option("#f-none_tags", ["high-spender"])
        await page.click("#apply")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("王芳")
        await expect(rows.first.locator(".tag[data-tag='lifecycle:returning']")).to_have_text(
            "复购客户"
        )
        export = page.locator("#export-csv")
        href = await export.get_attribute("href") or ""
        assert "none_tags=high-spender" in href
        # the CSV in the reader's words, as the orders' export (the Tag API's keeps names)
        answer = await page.request.get(url + href)
        assert answer.ok, await answer.text()
        [head, wang] = list(csv.reader(io.StringIO((await answer.text()).lstrip("\ufeff"))))
        assert head[:4] == ["客户编号", "客户名称", "公司", "VIP"], head
        assert (wang[1], wang[3]) == ("王芳", "否"), wang
        assert "复购客户" in wang[-1].split("，"), wang

        # a day picked is that day in the reader's zone (the page sends its offset): 张伟's
        # only order, 3 days ago, falls on one day at +14:00 and on none of it at -12:00
        day = (NOW - timedelta(days=3) + timedelta(hours=14)).date().isoformat()
        days = f"last_order_from={day}&last_order_to={day}"
        await page.goto(f"{url}/console/customers?{days}&tz=%2B14:00")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("张伟")
        export = await page.locator("#export-csv").get_attribute("href") or ""
        assert f"last_order_from={day}T00%3A00%3A00%2B14%3A00" in export  # the same days
        await page.goto(f"{url}/console/customers?{days}&tz=-12:00")
        assert "张伟" not in await page.locator("#customers").inner_text()
        # the form sends the browser's own zone by its name (daylight saving day by day)
        browser_zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
        await page.click("#apply")
        await expect(page).to_have_url(re.compile(r"tz=" + re.escape(quote(browser_zone, ""))))

        # a filter refused: each field by its label, in the reader's words, never a blank page
        error = page.locator("#error")
        amount = "请输入金额，如 1200.50（不能为负数，最多两位小数）"
        for query, said in (
            ("spend_min=abc&orders_min=-1", f"消费额下限：{amount}；有效订单数至少：不能小于 0"),
            ("spend_min=500&spend_max=20", "消费额下限不能大于消费额上限"),
            ("last_order_from=2026-05-02&last_order_to=2026-05-01", "最近下单起不能晚于最近下单止"),
        ):
            await page.goto(f"{url}/console/customers?{query}")
            await expect(error).to_have_text(said)
            await expect(rows).to_have_count(0)
            await expect(page.locator("#not-queried")).to_be_visible()
            await expect(page.locator("#export-csv")).to_have_count(0)  # nothing to export
        await expect(page.locator("#f-last-from")).to_have_attribute("aria-invalid", "true")
        # the calendar's last day west of UTC (in UTC, year 10000): a page, never a 500
        answer = await page.goto(f"{url}/console/customers?last_order_to=9999-12-31&tz=-05:00")
        assert answer is not None
        assert answer.status == 200
        await page.goto(f"{url}/console/customers?spend_min=abc&orders_min=-1")
        await expect(page.locator("#f-spend-min")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#f-orders-min")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#f-spend-max")).not_to_have_attribute("aria-invalid", "true")
        await shot(page, "customers-refused-filter", tmp_path, full_page=False)

        # a page link that no longer fits (another sort's, or mangled): said so, with the way back
        await page.goto(f"{url}/console/customers?sort=-spend&cursor=garbage")
        await expect(page.locator("#stale-page")).to_contain_text("这个翻页链接已失效")
        await page.click("#first-page")
        await expect(rows).to_have_count(4)
        await expect(page).not_to_have_url(re.compile("cursor"))

        # a preset view as a tab
        await page.goto(f"{url}/console/customers")
        await page.click("#views a:has-text('高消费客户')")
        await expect(rows).to_have_count(1)  # 陈静 alone spent ≥ 20,000 over 365 days
        await expect(page.locator("#views a[aria-current=page]")).to_have_text("高消费客户")

        # the customer page: tags with their reasons, figures, orders; a manual tag
        await page.evaluate(
            "() => OT.api('/tags', {method: 'POST', body: {name: '生日关怀', colour: '#e11d48'}})"
        )
        await page.reload()
        await rows.first.locator("a").click()
        await expect(page.locator("#customer-name")).to_have_text("陈静")
        high = page.locator("#applied li[data-tag='high-spender']")
        await expect(high).to_contain_text("365 天消费 30,599.00（≥ 20,000）→ 高消费客户")
        await expect(high).to_contain_text("behaviour.high-spender v1")
        await expect(page.locator("#orders tbody tr")).to_have_count(4)
        # offered: tags that say something of a customer, none an order rule gives (urgent,
        # new-order, risk:*, regular by default, VIP as of an order), nothing picked at first
        picker = page.locator("#m-tag")
        await expect(picker.locator("option:checked")).to_have_text("请选择标签")
        offered = await picker.locator("option").evaluate_all("os => os.map(o => o.value)")
        assert {"生日关怀", "lifecycle:lapsed"} <= set(offered)
        # none the rules name from the data (prefers:数码): the Tag API refuses them by hand
        assert not [name for name in offered if name.startswith("prefers:")]
        assert not {"high-spender", "prefers:家居"} & set(offered)  # the customer holds them
        assert not {"urgent", "regular", "new-order", "return-order", "risk:velocity", "vip"} & set(
            offered
        )
        assert not [name for name in offered if name.startswith(("status:", "category:"))]
        await page.select_option("#m-tag", "生日关怀")
        await page.fill("#m-reason", "生日关怀")
        await page.click("#m-add")
        cared = page.locator("#applied li[data-tag='生日关怀']")
        await expect(cared).to_contain_text("生日关怀")
        await expect(cared).to_contain_text("王小明")
        await expect(page.locator("#history li").first).to_contain_text("生日关怀")
        await shot(page, "customer", tmp_path)
        # removed by hand: the history says why it had been given, not as if it still held
        status = await page.evaluate(
            """async (path) => {
                const boot = JSON.parse(document.getElementById("boot").textContent);
                const answer = await fetch(path, {method: "DELETE",
                    headers: {"X-CSRF-Token": boot.csrf}});
                return answer.status;
            }""",
            f"/customers/{run_id}-chen/tags/{quote('生日关怀')}",
        )
        assert status == 204
        await page.reload()
        await expect(page.locator("#history li").first).to_contain_text("移除前的原因：生日关怀")
        await browser.close()

    stored = await mongo_db["customers"].find_one({"_id": f"{run_id}-chen"})
    assert stored is not None
    assert "生日关怀" not in stored["tag_names"]  # added, then removed by hand


async def test_a_team_saves_a_customer_view_and_sees_its_count(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str, tmp_path: Path
) -> None:
    url = console_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "王小明")
        answers = iter(["家居爱好者", "accept"])  # the view's name, then the delete's confirm
        page.on("dialog", lambda dialog: dialog.accept(next(answers)))
        await page.goto(f"{url}/console/customers")
        rows = page.locator("#customers tbody tr")
        await expect(rows).to_have_count(4)

        # filter, then save the filter as a view the team shares
        await page.select_option("#f-all_tags", ["prefers:家居"])
        await page.fill("#f-spend-min", "1000")
        await page.click("#apply")
        await expect(rows).to_have_count(2)  # 陈静 and 王芳
        await page.click("#save-view")
        tab = page.locator("#views .saved-view a:has-text('家居爱好者')")
        await expect(tab).to_have_attribute("aria-current", "page")
        await expect(tab.locator(".count")).to_have_text("2")
        await shot(page, "customers-saved-views", tmp_path)

        # from anywhere, the tab brings the filter back
        await page.goto(f"{url}/console/customers")
        await expect(rows).to_have_count(4)
        await tab.click()
        await expect(rows).to_have_count(2)
        await expect(page.locator("#f-spend-min")).to_have_value("1000")
        assert sorted([await r.get_attribute("data-customer") for r in await rows.all()]) == [
            f"{run_id}-chen",
            f"{run_id}-wang",
        ]
        stored = await mongo_db["console_views"].find_one({"name": "家居爱好者"})
        assert stored is not None
        assert (stored["list"], stored["by"]) == ("customers", "王小明")

        # deleted, the tab is gone for everyone
        await page.click("#views .saved-view button.del")
        await expect(page.locator("#views .saved-view")).to_have_count(0)
        await page.reload()
        await expect(page.locator("#views .saved-view")).to_have_count(0)
        await browser.close()
    assert await mongo_db["console_views"].count_documents({}) == 0

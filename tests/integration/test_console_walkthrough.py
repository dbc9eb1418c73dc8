"""The console walked through as staff use it, in Debian's Chromium against the tagger's HTTP
process on the real stack: find orders by a tag, open one and read why it carries it (in
Chinese and English), tag orders in bulk (picked, then by filter, as a job), rename the tag on
the Tags page, read the reports' charts and the rules page, narrow too. Its screenshots are the
README's and docs/console/'s: orders, order, tags, reports, rules, rules-en."""

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Page, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.builtin_labels import reason_labels
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.stored_tags import order_tags
from tests.integration.console_browser import shot, signed_in, tagged_with
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration


async def operators_apart_from_their_values(page: Page, cells: str) -> tuple[int, list[str]]:
    """How many comparisons (``≥ 5,000``) the cells show, and the cells where one breaks
    between its operator and its number (the operator ending a line, the number alone on the
    next): the operator's and the number's first character on different lines."""
    checked, broken = await page.evaluate(
        r"""(selector) => {
            let checked = 0;
            const broken = [];
            const top = (node, at) => {
                const range = document.createRange();
                range.setStart(node, at);
                range.setEnd(node, at + 1);
                return range.getBoundingClientRect().top;
            };
            for (const cell of document.querySelectorAll(selector)) {
                const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const match of node.data.matchAll(/[≥≤<>]\s\d/g)) {
                        checked += 1;
                        if (Math.abs(top(node, match.index) - top(node, match.index + 2)) > 1) {
                            broken.push(cell.textContent);
                        }
                    }
                }
            }
            return [checked, broken];
        }""",
        cells,
    )
    return checked, broken


async def test_staff_find_explain_and_tag_orders_in_the_console(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str, tmp_path: Path
) -> None:
    url = console_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "王小明")
        await expect(page.locator("nav")).to_contain_text("订单")
        await shot(page, "orders", tmp_path, full_page=False)  # the README's first picture

        # filter by a tag picked from the catalog
        urgent = await tagged_with(mongo_db, "urgent")
        assert 0 < len(urgent) < 50
        # in the order of the words the reader sees: 复购订单 (fù) before 新订单 (xīn), though
        # repeat-order comes after new-order by name
        offered = await page.locator("#f-tag option").evaluate_all("os => os.map(o => o.value)")
        assert offered.index("repeat-order") < offered.index("new-order")
        await page.select_option("#f-mode", "all_tags")
        await page.select_option("#f-tag", "urgent")
        rows = page.locator("#orders tbody tr")
        await expect(rows).to_have_count(len(urgent))
        shown = {await r.get_attribute("data-order") for r in await rows.all()}
        assert shown == urgent
        await expect(page.locator("#picked")).to_contain_text("紧急")
        # the workbook on the reader's clock: the browser's zone by name (each row its offset)
        zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
        workbook = await page.locator("#export-xlsx").get_attribute("href") or ""
        assert f"tz={quote(zone, safe='')}" in workbook, workbook

        # open an order and see the rule's reason, in the staff's language
        order_no = sorted(urgent)[0]
        stored = await mongo_db["orders"].find_one({"order_no": order_no})
        assert stored is not None
        templates = ReasonTemplates(load_rules(DEFAULT_RULES_FILE))  # stored compact
        reason = next(
            t.reason
            for t in order_tags(stored, templates.in_language("zh-CN", reason_labels("zh-CN")))
            if t.name == "urgent"
        )
        assert reason.endswith("→ 紧急")
        await page.click(f"#orders a:text-is('{order_no}')")
        applied = page.locator("#applied li[data-tag='urgent']")
        await expect(applied.locator(".why")).to_have_text(reason)
        await expect(applied.locator(".meta")).to_contain_text("规则 priority.")
        await expect(page.locator("#explain tbody tr").first).to_be_visible()
        # the explain table reads in the staff's language too
        await expect(page.locator("#explain tr[data-rule='status'] td").nth(3)).to_have_text(
            "订单状态为" + {"pending": "待处理", "processed": "处理中"}.get(stored["status"], "?")
        )
        # how long the tag lasts, the rule's condition inside the page's sentence
        await expect(applied.locator(".meta")).to_contain_text(
            "有效条件：订单状态 属于 [待处理, 处理中]"
        )
        await shot(page, "order", tmp_path)
        await page.click("#lang-switch")
        await expect(applied.locator(".meta")).to_contain_text(
            "lasts while order status is one of [Pending, Processing]"
        )
        await page.screenshot(path=tmp_path / "order-en.png", full_page=True)
        await page.click("#lang-switch")
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

        # batch-add a new custom tag to three selected orders
        custom = f"group-buy-{run_id}"
        await page.goto(f"{url}/console/")
        boxes = page.locator("#orders tbody input[type=checkbox]")
        await expect(boxes.first).to_be_visible()
        picked = [
            await page.locator("#orders tbody tr").nth(i).get_attribute("data-order")
            for i in range(3)
        ]
        for i in range(3):
            await boxes.nth(i).check()
        await expect(page.locator("#bulk-count")).to_have_text("已选 3 个订单")
        await page.fill("#bulk-new", custom)
        await page.fill("#bulk-reason", "团购活动")
        await page.click("#bulk-add")
        await expect(page.locator("#confirm-text")).to_contain_text("3 个订单")
        await page.click("#confirm-ok")
        await expect(page.locator("#job-result")).to_have_text("完成：3 个订单已更改（共 3 个）")
        await page.click("#confirm-cancel")
        assert await tagged_with(mongo_db, custom) == set(picked)

        # in English, a count agrees with its number (the page's Intl.PluralRules)
        await page.goto(f"{url}/console/lang/en?next=/console/")
        await boxes.first.check()
        await expect(page.locator("#bulk-count")).to_have_text("1 order selected")
        await boxes.nth(1).check()
        await expect(page.locator("#bulk-count")).to_have_text("2 orders selected")
        await page.goto(f"{url}/console/lang/zh-CN?next=/console/")

        # ... and to everything matching a filter, as a job with progress
        regular = await tagged_with(mongo_db, "regular")
        await page.select_option("#f-tag", "regular")
        await expect(page.locator("#picked")).to_contain_text("常规")
        await page.check("#select-filter")
        await page.fill("#bulk-new", custom)
        await page.click("#bulk-add")
        await expect(page.locator("#confirm-text")).to_contain_text(f"{len(regular)} 个订单")
        await page.click("#confirm-ok")
        await expect(page.locator("#job-result")).to_contain_text("完成", timeout=30_000)
        await page.click("#confirm-cancel")
        assert await tagged_with(mongo_db, custom) == set(picked) | regular

        # rename the tag (a job); every order follows
        carriers = await tagged_with(mongo_db, custom)
        await page.goto(f"{url}/console/tags")
        row = page.locator(f"#catalog tr[data-tag='{custom}']")
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept(f"{custom}-x")))
        await row.locator("[data-action=rename]").click()
        await expect(page.locator("#job-text")).to_contain_text("完成", timeout=30_000)
        await page.click("#job button")
        await expect(page.locator(f"#catalog tr[data-tag='{custom}-x']")).to_be_visible()
        await expect(page.locator(f"#catalog tr[data-tag='{custom}']")).to_have_count(0)
        assert await tagged_with(mongo_db, f"{custom}-x") == carriers
        # counted after the job, not the counts kept from before it
        renamed = page.locator(f"#catalog tr[data-tag='{custom}-x'] [data-use=orders]")
        await expect(renamed).to_have_text(f"{len(carriers)} 个订单")
        assert await tagged_with(mongo_db, custom) == set()
        await shot(page, "tags", tmp_path)

        # a chart renders with data
        await page.goto(f"{url}/console/reports")
        for report in ("over-time", "share", "top-customers", "rule-hits"):
            section = page.locator(f"#{report}")
            await expect(section.locator("canvas")).to_have_count(1)
            await expect(section).not_to_have_attribute("data-rows", "0")
            await expect(section.locator("tbody tr").first).to_be_attached()
        await expect(page.locator("#share tbody")).to_contain_text("紧急")
        # amounts read as money elsewhere in the console (1,234.00); the CSV keeps them raw
        cells = page.locator("#top-customers tbody tr").first.locator("td")
        amount = await cells.nth(3).text_content() or ""
        assert re.fullmatch(r"\d{1,3}(,\d{3})*\.\d{2} CNY", amount), amount  # its currency's
        assert await cells.nth(1).text_content(), "the customer's name beside the id"
        await shot(page, "reports", tmp_path)

        await page.goto(f"{url}/console/rules")
        await expect(page.locator("tr[data-rule='risk.velocity']")).to_contain_text(
            "10 分钟内至少 5 单"
        )
        # the reason template in the staff's language, facts named by their labels
        fast = page.locator("tr[data-rule='priority.fast-shipping']")
        await expect(fast).to_contain_text("{配送方式} 配送 → 紧急")
        await expect(fast).to_contain_text("配送方式 属于 [加急快递, 当日达]")
        # a yes/no fact as a phrase
        vip = page.locator("tr[data-rule='priority.vip-large-order']")
        await expect(vip).to_contain_text("(有 VIP 标记 或 累计消费 ≥ 500,000) 且 金额 ≥ 5,000")
        first_large = page.locator("tr[data-rule='risk.new-customer-large-order']")
        await expect(first_large).to_contain_text("是首单 且 金额 ≥ 20,000")
        await shot(page, "rules", tmp_path)

        # switch the language, and back
        await page.click("#lang-switch")
        await expect(page.locator("nav")).to_contain_text("Orders")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.locator("tr[data-rule='risk.velocity']")).to_contain_text(
            "At least 5 orders within 10 minutes"
        )
        # facts by their English labels, not the rule file's names
        await expect(fast).to_contain_text("Shipping method is one of [Express, Same day]")
        await expect(fast).to_contain_text("{Shipping method} shipping → urgent")
        await expect(page.locator("#rules")).not_to_contain_text("shipping.method")
        # a cell's first word keeps its capital, the later labels read as in a sentence
        await expect(vip).to_contain_text(
            "(VIP flag is set or lifetime spend ≥ 500,000) and order amount ≥ 5,000"
        )
        await expect(first_large).to_contain_text(
            "Customer's first order and order amount ≥ 20,000"
        )
        await expect(fast).to_contain_text("Order status is one of [Pending, Processing]")
        await shot(page, "rules-en", tmp_path)
        # narrow, the conditions wrap, yet no operator ends a line without its number
        for lang in ("en", "zh-CN"):
            await page.set_viewport_size({"width": 640, "height": 800})
            checked, broken = await operators_apart_from_their_values(page, "#rules td.wrap")
            assert checked > 10, lang
            assert broken == [], lang
            await page.screenshot(path=tmp_path / f"rules-narrow-{lang}.png", full_page=True)
            await page.set_viewport_size({"width": 1366, "height": 800})
            if lang == "en":  # and back
                await page.click("#lang-switch")
                await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await browser.close()

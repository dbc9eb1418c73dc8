"""The console's pages in a real headless Chromium (Debian's, driven by Playwright) against the
tagger's HTTP process on the real stack. ORDERTAG_UPDATE_SCREENSHOT=1 refreshes docs/console/."""

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.notifier.app import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.tagger.app import create_app
from services.tagger.builtin_labels import reason_labels
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from shared.events import OrderCreated
from shared.stored_tags import order_tags, stored_tags_of
from tests.generated import order_stream
from tests.integration.conftest import publish_events, wait_for_orders
from tests.integration.servers import served_app
from tests.integration.test_notifier import publish_tagged, routing_file, tagged_event
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration
DOCS = Path(__file__).parents[2] / "docs" / "console"
PASSWORD = "correct horse battery"


async def shot(page: Page, name: str, tmp_path: Path, full_page: bool = True) -> None:
    """A full-page screenshot: into docs/console/ when asked, else beside the test's files."""
    folder = DOCS if os.environ.get("ORDERTAG_UPDATE_SCREENSHOT") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000


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


@pytest.fixture
async def console_url(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[str]:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create("王小明", Role.ADMIN, PASSWORD)
    await users.create("viewer", Role.VIEWER, PASSWORD)
    events, _ = order_stream(120, customers=15, seed=8, prefix=run_id)
    await publish_events(tagger_settings, events)
    app = create_app(tagger_settings)
    async with served_app(app) as url:
        created = sum(isinstance(e, OrderCreated) for e in events)
        await wait_for_orders(mongo_db, created, len(events), within=90)
        yield url


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


async def test_the_alerts_page_joins_the_console_with_its_sign_in_and_order_links(
    console_url: str,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    tmp_path: Path,
) -> None:
    notifier_settings = NotifierSettings(
        **tagger_settings.model_dump(exclude={"tagger_port"}),
        notifier_group_id=f"alerts-page-{run_id}",
        notifier_routing_file=routing_file(tmp_path, [], []),
        notifier_console_url=console_url,
    )
    order_no = sorted(await tagged_with(mongo_db, "urgent"))[0]
    async with (
        served_app(notifier_app(notifier_settings)) as alerts_url,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")  # one sign-in, at the console
        await page.goto(f"{alerts_url}/")
        await expect(page).to_have_url(f"{alerts_url}/")  # no second sign-in
        await expect(page.locator("nav [aria-current=page]")).to_have_text("告警")
        await expect(page.locator("nav a").first).to_have_attribute(
            "href", f"{console_url}/console/"
        )
        await expect(page.locator("#status")).to_have_text("实时", timeout=10_000)

        await publish_tagged(notifier_settings, [tagged_event(order_no, ["urgent", "vip"], "vip")])
        row = page.locator(f"tr[data-id='{order_no}:support']")
        await expect(row).to_be_visible(timeout=15_000)
        await expect(row).to_contain_text("严重")
        await expect(row.locator(".tag").first).to_have_text("紧急")  # the catalog's label
        link = row.locator("a", has_text=order_no)
        await expect(link).to_have_attribute("href", f"{console_url}/console/orders/{order_no}")

        await row.locator("button", has_text="认领").click()
        await expect(row).to_contain_text("王小明 已认领")  # the signed-in person, recorded
        stored = await mongo_db["alerts"].find_one({"alert_id": f"{order_no}:support"})
        assert stored is not None
        assert stored["claimed_by"] == "王小明"
        await row.click()
        await expect(page.locator("#detail")).to_contain_text(order_no)
        await page.evaluate("window.scrollTo(0, 0)")  # the picture opens on the page's top
        assert await page.evaluate("window.scrollY") == 0
        await shot(page, "alerts", tmp_path, full_page=False)

        await link.click()  # the order number opens the console's order detail
        await expect(page).to_have_url(f"{console_url}/console/orders/{order_no}")

        # a viewer's console session does not open the alerts page
        viewer = await signed_in(browser, console_url, "viewer")
        await viewer.goto(f"{alerts_url}/")
        await expect(viewer).to_have_url(f"{alerts_url}/login")
        await browser.close()


async def test_the_tags_page_catches_near_duplicates_and_an_agent_is_told_who_may_set_vip(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    """Issue #17 in the console: a near-duplicate is confirmed or merged from the review, and a
    tag the catalog keeps for managers is refused to an agent with the role it needs."""
    await UserStore(mongo_db).create("客服小李", Role.AGENT, PASSWORD)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, console_url, "王小明")
        await page.goto(f"{console_url}/console/tags")
        # who may: in Chinese punctuation, and admins named (they always may)
        perm = page.locator("#catalog tr[data-tag='vip'] .perm")
        await expect(perm).to_contain_text("可添加：主管 / 管理员 · 可移除：主管 / 管理员")
        await page.fill("#c-name", "家居爱好者")
        await page.fill("#c-label-en", "Home-goods lover")
        await page.click("#c-submit")
        await expect(page.locator("#catalog tr[data-tag='家居爱好者']")).to_be_visible()

        # a near-duplicate (traditional characters, a trailing 客户) asks before it is kept
        asked: list[str] = []

        async def accept(dialog: Any) -> None:
            asked.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await page.fill("#c-name", "家居愛好者客戶")
        await page.click("#c-submit")
        await expect(page.locator("#catalog tr[data-tag='家居愛好者客戶']")).to_be_visible()
        assert asked[0].startswith("「家居愛好者客戶」与已有标签 家居爱好者 几乎相同。")
        pair = page.locator("#duplicates li", has_text="家居愛好者客戶")
        await expect(pair).to_contain_text("家居爱好者")

        # the review offers the merge that exists: the twin leaves the catalog
        await pair.locator("button", has_text="将 家居愛好者客戶 合并到 家居爱好者").click()
        await expect(page.locator("#job-text")).to_contain_text("完成", timeout=30_000)
        await page.click("#job button")
        await expect(page.locator("#catalog tr[data-tag='家居愛好者客戶']")).to_have_count(0)
        await expect(page.locator("#duplicates")).to_contain_text("没有疑似重复的标签")

        # an agent may not set VIP: the page says which role may
        agent = await signed_in(browser, console_url, "客服小李")
        shown = agent.locator("#orders tbody tr")
        await expect(shown.first).to_be_visible()
        listed = await shown.evaluate_all("rs => rs.map(r => r.dataset.order)")
        plain = await mongo_db["orders"].find_one(
            {"order_no": {"$in": listed}, "tag_names": {"$ne": "vip"}}
        )
        assert plain is not None
        order_no = plain["order_no"]
        await agent.goto(f"{console_url}/console/orders/{order_no}")
        # the picker offers what the agent may add (filled once the order is read): no tag the
        # order carries already, and not vip, which only managers set
        await expect(agent.locator("#m-tag option").nth(1)).to_be_attached()
        await expect(agent.locator("#applied li").first).to_be_visible()
        carried = set(plain["tag_names"])
        offered = await agent.locator("#m-tag option").evaluate_all("os => os.map(o => o.value)")
        assert "vip" not in offered
        assert not carried & set(offered), carried & set(offered)
        # typed into the batch bar, the Tag API refuses it, in the agent's words
        await agent.goto(f"{console_url}/console/")
        await agent.locator(f"#orders tr[data-order='{order_no}'] input[type=checkbox]").check()
        await agent.fill("#bulk-new", "vip")
        await agent.fill("#bulk-reason", "老客户要求")
        await agent.click("#bulk-add")
        await agent.click("#confirm-ok")
        refused = "只有主管 / 管理员可以手动添加「VIP客户」"
        await expect(agent.get_by_text(refused)).to_be_visible()
        stored = await mongo_db["orders"].find_one({"order_no": order_no})
        assert stored is not None
        assert not any(
            t["name"] == "vip" and t.get("source") == "manual" for t in stored_tags_of(stored)
        )
        await browser.close()

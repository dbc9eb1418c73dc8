"""The console's customer pages in a real headless Chromium against the tagger's HTTP process on
the real stack: the customers list with tag and figure filters, preset views and exports; a
customer's page with tags and their reasons, figures, orders and a manual tag.
ORDERTAG_UPDATE_SCREENSHOT=1 refreshes docs/console/customers*.png."""

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.events import OrderCreated, StatusChanged
from shared.models import Order
from tests.conftest import eventually
from tests.factories import customer_order
from tests.integration.conftest import publish_events
from tests.integration.servers import served_app
from tests.integration.test_console_browser import PASSWORD, shot, signed_in
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
HOME = [("SOFA-1", "家居", "3000.00"), ("LAMP-2", "家居", "450.00")]
PHONE = [("PH-1", "数码", "2999.00")]
PRODUCT_NAMES = {"SOFA-1": "布艺沙发", "LAMP-2": "落地灯", "PH-1": "智能手机"}
CUSTOMERS = [  # id suffix, name, company, orders (days ago, lines)
    ("wang", "王芳", "杭州云帆家居有限公司", [(40, HOME), (20, HOME), (5, HOME + PHONE)]),
    ("zhang", "张伟", None, [(3, PHONE)]),
    ("chen", "陈静", None, [(30, HOME * 3), (25, HOME * 3), (12, HOME * 2), (2, PHONE)]),
    ("li", "李娜", "上海", [(60, PHONE), (50, PHONE)]),
]


def named_lines(order: Order) -> Order:
    """The order with its lines called by their products' names, as a shop calls them."""
    lines = [line.model_copy(update={"name": PRODUCT_NAMES[line.sku]}) for line in order.lines]
    return order.model_copy(update={"lines": lines})


@pytest.fixture
async def console_url(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[str]:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create("王小明", Role.ADMIN, PASSWORD)
    events = [
        OrderCreated(
            order=named_lines(
                customer_order(
                    f"{run_id}-{suffix}-{n}",
                    f"{run_id}-{suffix}",
                    NOW - timedelta(days=days),
                    lines,
                    name,
                )
            ),
            occurred_at=NOW - timedelta(days=days),
        )
        for suffix, name, _, orders in CUSTOMERS
        for n, (days, lines) in enumerate(orders)
    ]
    await publish_events(tagger_settings, events)
    async with served_app(create_app(tagger_settings)) as url:

        async def all_tagged() -> bool:
            held = await mongo_db["customers"].find({}, {"orders": 1}).to_list()
            return sum(d.get("orders", 0) for d in held) == len(events)

        await eventually(all_tagged, within=90)
        yield url


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


async def test_customer_tags_count_on_customers_and_amounts_read_alike_on_every_page(
    console_url: str,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    tmp_path: Path,
) -> None:
    url = console_url
    # wang-0 is processed: the rules take status:pending away, and its history says why
    order_no = f"{run_id}-wang-0"
    processed = StatusChanged(order_no=order_no, customer_id=f"{run_id}-wang", status="processed")
    await publish_events(tagger_settings, [processed])

    async def moved_on() -> bool:
        found = await mongo_db["orders"].find_one({"order_no": order_no}, {"tag_names": 1})
        return found is not None and "status:processed" in found["tag_names"]

    assert await eventually(moved_on, within=60)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "王小明")

        # the Tags page: customer tags counted on customers, never reviewed as unused
        await page.goto(f"{url}/console/tags")
        high = page.locator("#catalog tr[data-tag='high-spender']")
        await expect(high.locator("[data-use=customers]")).to_have_text("1 位客户")
        await expect(high.locator("[data-use=orders]")).to_have_count(0)  # no "0 个订单"
        lifecycle = page.locator("ul.families li", has=page.locator("code", has_text="lifecycle"))
        await expect(lifecycle).to_contain_text("互斥：一个客户只能有其中一个")
        await expect(page.locator("#catalog tr[data-tag='lifecycle:returning']")).to_contain_text(
            "位客户"
        )
        await expect(page.locator("#unused li").first).to_be_visible()
        unused = await page.locator("#unused .tag").evaluate_all(
            "els => els.map(e => e.dataset.tag)"
        )
        assert not {"high-spender", "lifecycle:returning", "early-adopter"} & set(unused)
        # every tag the rules can set is listed to be named, a category and a preference too
        for name, label in (
            ("category:家居", "家居"),
            ("prefers:家居", "偏好：家居"),
            ("status:shipped", "已发货"),
            ("region:east-china", "华东"),
        ):
            await expect(page.locator(f"#catalog tr[data-tag='{name}'] .tag")).to_have_text(label)
        # a tag the catalog does not store is not added by hand
        shipped = page.locator("#catalog tr[data-tag='status:shipped'] .perm")
        await expect(shipped).to_have_text(
            "仅由规则设置（取自订单数据）"
        )  # not stored: not by hand
        await shot(page, "tags-usage", tmp_path)

        # money: separators, two decimals and the currency on the customer pages and the order
        await page.goto(f"{url}/console/customers")
        await expect(page.locator("#customers tbody tr").first).to_contain_text("30,599.00 CNY")
        await page.goto(f"{url}/console/customers/{run_id}-chen")
        await expect(page.locator("#detail")).to_contain_text("30,599.00 CNY")
        retired = {  # a tag a rule since taken out gave (the catalog lists no such tag)
            "name": "retired-rule-tag",
            "source": "rule",
            "rule_id": "retired.rule",
            "rule_version": 1,
            "reason": "what the retired rule said",
            "at": datetime.now(UTC),
        }
        by_hand = {
            "name": "gift-wrap",
            "source": "manual",
            "by": "王小明",
            "reason": "客户来电要求礼品包装，并在卡片上写祝福语",
            "at": datetime.now(UTC),
        }
        await mongo_db["orders"].update_one(
            {"order_no": f"{run_id}-wang-0"},
            {
                "$push": {
                    "tags": {"$each": [retired, by_hand]},
                    "tag_names": {"$each": [retired["name"], "gift-wrap"]},
                }
            },
        )
        await page.goto(f"{url}/console/orders/{run_id}-wang-0")
        await expect(page.locator("#fields")).to_contain_text("3,450.00 CNY")
        await expect(page.locator("#history li").first).to_contain_text("不再成立：订单状态为")

        # times: the customer page's (rendered by the server) as the order page's, in the
        # reader's time zone (Shanghai's, 8 hours ahead of the server's UTC) and words
        shanghai = await signed_in(browser, url, "王小明", timezone="Asia/Shanghai")
        await shanghai.goto(f"{url}/console/customers/{run_id}-wang")
        placed = shanghai.locator(f"#orders tbody tr:has-text('{run_id}-wang-0') time")
        await expect(placed).not_to_contain_text("UTC")
        at = datetime.fromisoformat(await placed.get_attribute("datetime") or "")
        local = at.astimezone(timezone(timedelta(hours=8)))
        placed_text = await placed.inner_text()
        assert local.strftime("%Y/%m/%d %H:%M") in placed_text
        await shanghai.goto(f"{url}/console/orders/{run_id}-wang-0")
        await expect(shanghai.locator("#fields")).to_contain_text(placed_text)
        # an admin may remove a person's tag; a rule's only where its permissions say so (the
        # priority family's "urgent"; not "regular", which keeps a rule's own), not one the
        # catalog has no permissions for (the retired rule's)
        # the picker offers what may be added by hand: not the tags the rules name from the
        # order's data (status:pending, region:east-china), which the Tag API would refuse
        offered = await page.locator("#m-tag option").evaluate_all("os => os.map(o => o.value)")
        assert "vip" in offered, offered
        assert not [o for o in offered if o.startswith(("status:", "region:", "category:"))]
        removable = page.locator("#applied li:has(button)")
        shown = set(await removable.evaluate_all("ls => ls.map(l => l.dataset.tag)"))
        rule_given = page.locator("#applied li[data-source='rule']")
        by_rules = set(await rule_given.evaluate_all("ls => ls.map(l => l.dataset.tag)"))
        assert {"category:家居", "retired-rule-tag"} <= by_rules, by_rules
        assert by_rules & {"urgent", "regular"}, by_rules
        assert shown & by_rules <= {"urgent"}, shown
        assert "gift-wrap" in shown, shown
        # a reason does not push its Remove button onto a line of its own
        first = page.locator("#applied li:has(button)").first
        badge = await first.locator(".tag").bounding_box()
        remove = await first.locator("button").bounding_box()
        assert badge is not None
        assert remove is not None
        assert abs(remove["y"] - badge["y"]) < badge["height"]
        await browser.close()


async def test_the_customer_page_offers_only_the_tag_changes_the_server_allows(
    console_url: str, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    url, customer = console_url, f"{run_id}-chen"
    users = UserStore(mongo_db)
    for role in (Role.VIEWER, Role.AGENT, Role.MANAGER):
        await users.create(f"{role.value}-{run_id}", role, PASSWORD)
    managers_only = {"add": ["agent", "manager"], "remove": ["manager"]}
    async with httpx.AsyncClient(base_url=url, headers={API_KEY_HEADER: LOCAL_DEV_KEY}) as admin:
        for tag in (
            {"name": "生日关怀"},  # the defaults: every role that may tag
            {"name": "投诉跟进", "permissions": managers_only},  # its own permissions
            {"name": "key-account", "family": "customer"},  # its family's: managers only
        ):
            assert (await admin.post("/tags", json=tag)).status_code == 201
            added = {"tag": tag["name"], "reason": "客服回访"}
            answer = await admin.post(f"/customers/{customer}/tags", json=added)
            assert answer.status_code == 200, answer.text
        for tag in ({"name": "节日问候"}, {"name": "重点维护", "family": "customer"}):  # not held
            assert (await admin.post("/tags", json=tag)).status_code == 201
    manual = {"生日关怀", "投诉跟进", "key-account"}
    offered_to = {
        f"viewer-{run_id}": set(),
        f"agent-{run_id}": {"生日关怀"},
        f"manager-{run_id}": manual,
        "王小明": manual,  # an admin
    }
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {}
        for who, offered in offered_to.items():
            page = pages[who] = await signed_in(browser, url, who)
            await page.goto(f"{url}/console/customers/{customer}")
            await expect(page.locator("#applied li[data-tag='key-account']")).to_be_visible()
            buttons = page.locator("#applied button.remove")
            shown = await buttons.evaluate_all("bs => bs.map(b => b.dataset.tag)")
            assert set(shown) == offered, who  # none on high-spender & co: rules give them
            if who != f"viewer-{run_id}":  # and the tags to add: those the role may add
                picker = page.locator("#m-tag option")
                addable = set(await picker.evaluate_all("os => os.map(o => o.value)"))
                assert not addable & manual, who  # the customer holds them already
                assert "节日问候" in addable, who
                assert ("重点维护" in addable) == (who != f"agent-{run_id}"), who

        # what the page does not offer the agent, the server refuses; what it offers, it does
        page = pages[f"agent-{run_id}"]
        tags = await page.locator("#applied li").evaluate_all("ls => ls.map(l => l.dataset.tag)")
        assert "high-spender" in tags
        refused = await page.evaluate(
            """async ([base, names]) => {
                const boot = JSON.parse(document.getElementById("boot").textContent);
                const statuses = [];
                for (const name of names) {
                    const answer = await fetch(`${base}/${encodeURIComponent(name)}`,
                        {method: "DELETE", headers: {"X-CSRF-Token": boot.csrf}});
                    statuses.push(answer.status);
                }
                return statuses;
            }""",
            [f"/customers/{customer}/tags", [t for t in tags if t != "生日关怀"]],
        )
        assert set(refused) <= {403, 409}, refused
        await page.click("#applied li[data-tag='生日关怀'] button.remove")
        await expect(page.locator("#applied li[data-tag='生日关怀']")).to_have_count(0)
        await expect(page.locator("#applied li[data-tag='投诉跟进']")).to_be_visible()
        await browser.close()


async def test_a_product_tag_reads_as_the_product_on_the_customer_pages(
    console_url: str, run_id: str, tmp_path: Path
) -> None:
    url, customer = console_url, f"{run_id}-chen"  # bought the sofa in 3 orders
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "王小明")
        sofa = "#applied li[data-tag='product:sofa-1'] .tag"

        await page.goto(f"{url}/console/customers/{customer}")
        await expect(page.locator(sofa)).to_have_text("偏好商品：布艺沙发 (SOFA-1)")
        why = page.locator("#applied li[data-tag='product:sofa-1'] .why")
        await expect(why).to_have_text("布艺沙发 (SOFA-1) 已在 3 单中购买")  # its name, not SKU
        added = page.locator("#history li", has_text="添加 偏好商品：布艺沙发")
        await expect(added.first).to_contain_text("布艺沙发 (SOFA-1) 已在")
        await page.goto(f"{url}/console/customers")
        row = page.locator(f"#customers tr[data-customer='{customer}']")
        await expect(row.locator(".tag[data-tag='product:sofa-1']")).to_have_text(
            "偏好商品：布艺沙发 (SOFA-1)"
        )
        # the filter offers what customers can carry, not the orders' tags (urgent, new-order)
        filters = page.locator("#f-all_tags option")
        offered = set(await filters.evaluate_all("os => os.map(o => o.value)"))
        assert {"high-spender", "lifecycle:returning"} <= offered, offered
        assert not {"urgent", "regular", "new-order", "big-customer"} & offered, offered
        option = page.locator("#f-all_tags option[value='product:lamp-2']")
        await expect(option).to_have_text("偏好商品：落地灯 (LAMP-2)")  # its name not twice
        spender = page.locator("#f-all_tags option[value='high-spender']")
        await expect(spender).to_have_text("高消费客户")  # by the label staff know it by

        await page.goto(f"{url}/console/lang/en?next=/console/customers/{customer}")
        await expect(page.locator(sofa)).to_have_text("Prefers product: 布艺沙发 (SOFA-1)")
        await expect(why).to_have_text("bought 布艺沙发 (SOFA-1) in 3 orders")
        await shot(page, "customer-en", tmp_path)
        await page.goto(f"{url}/console/customers")
        await expect(page.locator(f"#customers tr[data-customer='{customer}']")).to_be_visible()
        await shot(page, "customers-en", tmp_path, full_page=False)
        await browser.close()

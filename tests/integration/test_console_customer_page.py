"""A customer's page in the console, in a real headless Chromium against the tagger's HTTP
process on the real stack: the tag changes each role is offered are those the server allows; a
product tag reads as the product (its name, not its SKU) on the customer pages and in the list's
filter; customer tags are counted on customers on the Tags page; amounts and times read alike on
the customer pages and the order page. The customers are customer_console.py's.
ORDERTAG_UPDATE_SCREENSHOT=1 refreshes docs/console/tags-usage.png, customer-en.png and
customers-en.png."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.events import StatusChanged
from tests.conftest import eventually
from tests.integration.conftest import publish_events
from tests.integration.console_browser import PASSWORD, shot, signed_in
from tests.integration.customer_console import console_url
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

__all__ = ["console_url"]  # the four customers' console, in place of conftest.py's
pytestmark = pytest.mark.integration


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
            "仅由规则设置（取自订单或客户数据）"
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

"""The console's Tags page, in Debian's Chromium on the real stack (issue #17): a near-duplicate
name (traditional characters, a trailing 客户) asks before it is kept and is merged from the
review, who may add or remove a tag reads in Chinese, and a tag the catalog keeps for managers
(vip) is neither offered to an agent nor accepted from one, the refusal naming the role."""

from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from shared.stored_tags import stored_tags_of
from tests.integration.console_browser import PASSWORD, signed_in
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration


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

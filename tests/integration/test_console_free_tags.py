"""Free tags in the console (ORDERTAG_TAGGER_ALLOW_FREE_TAGS) in a real headless Chromium: where
they are allowed, an agent types a tag the catalog does not store on an order and in the batch
bar; where they are not (the default), no free entry is offered. ORDERTAG_UPDATE_SCREENSHOT=1
refreshes docs/console/."""

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.events import OrderCreated
from shared.stored_tags import stored_tags_of
from tests.generated import order_stream
from tests.integration.conftest import publish_events, wait_for_orders
from tests.integration.console_browser import PASSWORD, shot, signed_in, tagged_with
from tests.integration.servers import served_app
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration
AGENT = "客服小李"
VIEWER = "访客小赵"
Console = Callable[[bool], AbstractAsyncContextManager[str]]


@pytest.fixture
def console(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> Console:
    """The console over a few orders, with free tags allowed or not; an admin and an agent."""

    @asynccontextmanager
    async def started(allow_free_tags: bool) -> AsyncIterator[str]:
        users = UserStore(mongo_db)
        await users.ensure_indexes()
        await users.create("王小明", Role.ADMIN, PASSWORD)
        await users.create(AGENT, Role.AGENT, PASSWORD)
        await users.create(VIEWER, Role.VIEWER, PASSWORD)
        events, _ = order_stream(30, customers=6, seed=3, prefix=run_id)
        await publish_events(tagger_settings, events)
        settings = tagger_settings.model_copy(update={"tagger_allow_free_tags": allow_free_tags})
        async with served_app(create_app(settings)) as url:
            created = sum(isinstance(e, OrderCreated) for e in events)
            await wait_for_orders(mongo_db, created, len(events), within=90)
            yield url

    return started


async def first_order(page: Page) -> str:
    rows = page.locator("#orders tbody tr")
    await expect(rows.first).to_be_visible()
    order_no = await rows.first.get_attribute("data-order")
    assert order_no is not None
    return order_no


async def open_order(page: Page, url: str, order_no: str) -> None:
    await page.goto(f"{url}/console/orders/{order_no}")
    await expect(page.locator("#applied li").first).to_be_visible()
    await expect(page.locator("#m-tag option").nth(1)).to_be_attached()


async def test_with_free_tags_an_agent_adds_a_tag_the_catalog_does_not_store(
    console: Console, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str, tmp_path: Path
) -> None:
    async with console(True) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, AGENT)
        order_no = await first_order(page)
        await open_order(page, url, order_no)
        free, error = page.locator("#m-new"), page.locator("#m-error")
        await expect(free).to_have_attribute("placeholder", "或输入新标签名")
        # its tooltip joins the field and the rule in the reader's punctuation (：)
        await expect(free).to_have_attribute("title", re.compile("^标签名：只能使用小写字母"))
        await page.fill("#m-reason", "客户要求回电")  # a reason is required

        # refused before it is sent, in the agent's words: the name rule, a prefix only the
        # rules name tags under, a family the catalog keeps for managers
        for typed, said in (
            ("Call Back", "标签名：只能使用小写字母、数字、汉字和 - : _ ."),
            (
                "status:on-hold",
                "「status:on-hold」是规则根据数据命名的标签（status:…），只能由规则设置",
            ),
            ("customer:gold", "只有主管 / 管理员可以手动添加「customer:gold」"),
        ):
            await free.fill(typed)
            await page.click("#m-add")
            await expect(error).to_contain_text(said)
            await expect(free).to_have_attribute("aria-invalid", "true")

        # the Tag API refuses such a name too, even with free tags, and the console words it
        said = await page.evaluate(
            """async (path) => {
                try { await OT.api(path, {method: "POST", body: {add: ["status:on-hold"]}}); }
                catch (e) { return [e.status, e.message]; }
            }""",
            f"/orders/{order_no}/tags",
        )
        assert said == [
            422,
            "「status:on-hold」是规则根据数据命名的标签（status:…），只能由规则设置；请换一个名称",
        ]

        # the server's refusal shows there too: a catalog tag an admin deactivated
        async with httpx.AsyncClient(
            base_url=url, headers={API_KEY_HEADER: LOCAL_DEV_KEY}
        ) as admin:
            made = await admin.post("/tags", json={"name": "停用标签", "active": False})
            assert made.status_code == 201, made.text
        await page.reload()
        await open_order(page, url, order_no)
        await page.fill("#m-reason", "客户要求回电")
        await free.fill("停用标签")
        await page.click("#m-add")
        await expect(error).to_contain_text("停用标签")
        await expect(error).to_contain_text("停用")

        # a free tag: NFKC as the API reads it (full-width letters), added as the agent's
        await free.fill("回访-ｃａｌｌ")
        await page.click("#m-add")
        added = page.locator("#applied li[data-tag='回访-call']")
        await expect(added).to_contain_text("客户要求回电")
        await expect(added).to_have_attribute("data-source", "manual")
        await expect(error).to_be_hidden()
        await expect(free).to_have_value("")
        stored = await mongo_db["orders"].find_one({"order_no": order_no})
        assert stored is not None
        assert [
            (t["by"], t["source"]) for t in stored_tags_of(stored) if t["name"] == "回访-call"
        ] == [(AGENT, "manual")]
        # the picker beside it: catalog tags only, none the rules alone name (status:*)
        offered = await page.locator("#m-tag option").evaluate_all("os => os.map(o => o.value)")
        assert not [
            name for name in offered if name.startswith(("status:", "region:", "category:"))
        ]
        await open_order(page, url, order_no)  # afresh: no toast over the picture
        await page.fill("#m-reason", "客户要求回电")
        await free.fill("status:on-hold")
        await page.click("#m-add")
        await expect(error).to_be_visible()
        await shot(page, "free-tags-order-zh", tmp_path, full_page=False)
        await page.goto(f"{url}/console/lang/en?next=/console/orders/{order_no}")
        await expect(page.locator("#applied li[data-tag='回访-call']")).to_be_visible()
        await expect(free).to_have_attribute("placeholder", "or a new tag name")
        await expect(free).to_have_attribute("title", re.compile("^Tag name: use lowercase"))
        await page.fill("#m-reason", "call back")
        await free.fill("status:on-hold")
        await page.click("#m-add")
        await expect(error).to_contain_text(
            "“status:on-hold” is a name the rules give from the data"
        )
        await error.scroll_into_view_if_needed()
        await shot(page, "free-tags-order-en", tmp_path, full_page=False)

        # the batch bar: a typed free tag on two orders, no catalog tag made for it
        await page.goto(f"{url}/console/lang/zh-CN?next=/console/")
        boxes = page.locator("#orders tbody input[type=checkbox]")
        picked = [
            await page.locator("#orders tbody tr").nth(i).get_attribute("data-order")
            for i in (1, 2)
        ]
        for i in (1, 2):
            await boxes.nth(i).check()
        await page.fill("#bulk-new", "region:overseas")
        await page.click("#bulk-add")
        await expect(page.locator("#bulk-error")).to_contain_text("只能由规则设置")
        await page.fill("#bulk-new", f"团购-{run_id}".lower())
        await page.click("#bulk-add")
        await page.click("#confirm-ok")
        await expect(page.locator("#job-result")).to_have_text("完成：2 个订单已更改（共 2 个）")
        group_buy = f"团购-{run_id}".lower()
        assert await tagged_with(mongo_db, group_buy) == set(picked)
        async with httpx.AsyncClient(
            base_url=url, headers={API_KEY_HEADER: LOCAL_DEV_KEY}
        ) as admin:
            catalog = (await admin.get("/tags", params={"usage": "false"})).json()
        # no catalog tag made for it: listed as a free tag in use, stored nowhere
        listed = next(t for t in catalog if t["name"] == group_buy)
        assert (listed["in_catalog"], listed["named_by_rules"]) == (False, False)

        # now in use, the filter and the batch bar offer it: removed in bulk by picking it
        for picker in ("#f-tag", "#bulk-tag"):
            await expect(page.locator(f"{picker} option[value='{group_buy}']")).to_be_attached()
        # and the order page's picker, as the Tag API takes it (an order without it yet)
        other = await page.locator("#orders tbody tr").nth(3).get_attribute("data-order")
        assert other is not None
        assert other not in picked
        await open_order(page, url, other)
        await expect(page.locator(f"#m-tag option[value='{group_buy}']")).to_be_attached()
        await page.goto(f"{url}/console/")
        await page.select_option("#f-tag", group_buy)
        await expect(page.locator("#orders tbody tr")).to_have_count(2)
        await page.check("#select-page")
        await page.select_option("#bulk-tag", group_buy)
        await page.click("#bulk-remove")
        await page.click("#confirm-ok")
        await expect(page.locator("#job-result")).to_have_text("完成：2 个订单已更改（共 2 个）")
        assert await tagged_with(mongo_db, group_buy) == set()

        # the Tags page: the rules' own tags say a free tag cannot take their name
        await page.goto(f"{url}/console/tags")
        await expect(page.locator("#free-tags-hint")).to_contain_text("已允许自由标签")
        pending = page.locator("#catalog tr[data-tag='status:pending'] .perm")
        await expect(pending).to_have_text("仅由规则根据数据设置，自由标签不能使用此名称")
        # a viewer reads the same words: the setting, not the reader's role, words them
        viewer = await signed_in(browser, url, VIEWER)
        assert await viewer.evaluate("() => [OT.boot.freeTagsAllowed, OT.boot.freeTags]") == [
            True,
            None,
        ]
        await viewer.goto(f"{url}/console/tags")
        await expect(viewer.locator("#catalog tr[data-tag='status:pending'] .perm")).to_have_text(
            "仅由规则根据数据设置，自由标签不能使用此名称"
        )
        # a free tag in use (回访-call, on the first order) is the pickers', not the catalog's
        await expect(page.locator("#catalog tr[data-tag='回访-call']")).to_have_count(0)
        assert "回访-call" in await page.evaluate("() => OT.catalog.map((t) => t.name)")
        await shot(page, "free-tags-tags-zh", tmp_path, full_page=False)
        await page.goto(f"{url}/console/lang/en?next=/console/tags")
        await expect(pending).to_have_text(
            "Set by the rules alone, from the data: a free tag cannot take this name"
        )
        await shot(page, "free-tags-tags-en", tmp_path, full_page=False)
        await browser.close()


async def test_by_default_no_free_entry_is_offered(console: Console, tmp_path: Path) -> None:
    async with console(False) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for who in ("王小明", AGENT):
            page = await signed_in(browser, url, who)
            assert await page.evaluate("() => [OT.boot.freeTagsAllowed, OT.boot.freeTags]") == [
                False,
                None,
            ]
            order_no = await first_order(page)
            await open_order(page, url, order_no)
            await expect(page.locator("#m-new")).to_have_count(0)
            await expect(page.locator("#m-error")).to_have_count(0)
            await page.goto(f"{url}/console/tags")
            await expect(page.locator("#free-tags-hint")).to_have_count(0)
            pending = page.locator("#catalog tr[data-tag='status:pending'] .perm")
            await expect(pending).to_have_text("仅由规则设置（取自订单或客户数据）")
        # as before: a new name typed into the batch bar is a catalog tag an admin must make
        await page.goto(f"{url}/console/")
        # the batch bar offers the agent what it may add or remove (OT.mayAdd, OT.mayRemove):
        # urgent (agents may clear a rule's), not vip (managers'), none only the rules name
        await expect(page.locator("#bulk-tag option").nth(1)).to_be_attached()
        offered = await page.locator("#bulk-tag option").evaluate_all("os => os.map(o => o.value)")
        assert "urgent" in offered
        assert "vip" not in offered
        assert not [n for n in offered if n.startswith(("status:", "region:", "category:"))]
        await page.locator("#orders tbody input[type=checkbox]").first.check()
        await page.fill("#bulk-new", "call-back")
        await page.click("#bulk-add")
        await expect(page.locator("#bulk-error")).to_have_text(
            "标签 call-back 不在标签库中，请管理员先创建"
        )

        # an admin's new name the rules name (category:xyz) is refused in the Tag API's words
        # before it is made a catalog tag: the catalog is left as it was
        async with httpx.AsyncClient(
            base_url=url, headers={API_KEY_HEADER: LOCAL_DEV_KEY}
        ) as admin_api:

            async def catalog() -> list[str]:
                listed = (await admin_api.get("/tags", params={"usage": "false"})).json()
                return sorted(t["name"] for t in listed if t["in_catalog"])

            before = await catalog()
            page = await signed_in(browser, url, "王小明")
            assert "category:" in await page.evaluate("() => OT.boot.rulePrefixes")
            await page.locator("#orders tbody input[type=checkbox]").first.check()
            await page.fill("#bulk-new", "category:xyz")
            await page.click("#bulk-add")
            await expect(page.locator("#bulk-error")).to_have_text(
                "「category:xyz」是规则根据数据命名的标签（category:…），只能由规则设置；请换一个名称"
            )
            await expect(page.locator("#bulk-new")).to_have_attribute("aria-invalid", "true")
            await expect(page.locator("#confirm")).not_to_be_visible()
            assert await catalog() == before
            assert "category:xyz" not in before
        await browser.close()


async def test_a_tag_the_rules_name_stays_theirs_once_labelled(console: Console) -> None:
    """Labelling status:pending or prefers:数码 on the Tags page stores it in the catalog: it
    stays the rules' (named_by_rules), refused by hand by the Tag API and offered by no picker."""
    async with console(False) as url, async_playwright() as playwright:
        async with httpx.AsyncClient(
            base_url=url, headers={API_KEY_HEADER: LOCAL_DEV_KEY}
        ) as admin:
            for name, zh, en in (
                ("status:pending", "等待处理", "Awaiting"),
                ("prefers:数码", "数码控", "Gadget fan"),
            ):
                labelled = await admin.patch(
                    f"/tags/{name}",
                    json={"labels": {"zh-CN": zh, "en": en}, "confirm_duplicate": True},
                )
                assert labelled.status_code == 200, labelled.text
                assert labelled.json()["named_by_rules"] is True
            listed = {t["name"]: t for t in (await admin.get("/tags?usage=false")).json()}
            assert [
                (listed[n]["in_catalog"], listed[n]["named_by_rules"])
                for n in ("status:pending", "prefers:数码", "status:shipped", "urgent")
            ] == [(True, True), (True, True), (False, True), (True, False)]

            orders = (await admin.get("/orders", params={"limit": 1})).json()["orders"]
            order_no = orders[0]["order_no"]
            refused = await admin.post(
                f"/orders/{order_no}/tags", json={"add": ["status:pending"], "reason": "x"}
            )
            assert refused.status_code == 422, refused.text
            assert [e["field"] for e in refused.json()["errors"]] == ["add"]
            assert "one the rules name from the data (prefix 'status:')" in refused.text
            customers = (await admin.get("/customers", params={"limit": 1})).json()["customers"]
            customer = customers[0]["customer_id"]
            refused = await admin.post(f"/customers/{customer}/tags", json={"tag": "prefers:数码"})
            assert refused.status_code == 422, refused.text
            assert [e["field"] for e in refused.json()["errors"]] == ["tag"]

        # an admin, who may add any catalog tag, is offered neither
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "王小明")
        await open_order(page, url, order_no)
        offered = await page.locator("#m-tag option").evaluate_all("os => os.map(o => o.value)")
        assert "urgent" in offered
        assert "status:pending" not in offered
        await page.goto(f"{url}/console/")
        await expect(page.locator("#bulk-tag option").nth(1)).to_be_attached()
        offered = await page.locator("#bulk-tag option").evaluate_all("os => os.map(o => o.value)")
        assert "urgent" in offered
        assert "status:pending" not in offered
        await page.goto(f"{url}/console/customers/{customer}")
        await expect(page.locator("#m-tag option").nth(1)).to_be_attached()
        offered = await page.locator("#m-tag option").evaluate_all("os => os.map(o => o.value)")
        assert "prefers:数码" not in offered
        # the Tags page words the labelled one as the rules' own, not who may add it
        await page.goto(f"{url}/console/tags")
        pending = page.locator("#catalog tr[data-tag='status:pending'] .perm")
        await expect(pending).to_have_text("仅由规则设置（取自订单或客户数据）")
        await browser.close()

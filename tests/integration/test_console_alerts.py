"""The console and the notifier's alerts, on the real stack with Debian's Chromium reading the
pages. An order's alerts, on its console page and its customer's, give their causes as the
support page does, in the reader's language, its routing rule's why included: "紧急 · 警告（VIP
或高价值客户的紧急订单（金额较小））：加急快递配送 → 紧急", not the English the alert stores for
the channels; the notifier raises them on its default routing file from what the tagger tagged.
And the alerts page joins the console: one sign-in, links back to the console's order pages, a
claim recorded under the signed-in name, and a viewer's session refused."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.app import create_app as notifier_app
from services.notifier.routing import default_why, load_routing
from services.notifier.settings import DEFAULT_ROUTING_FILE, NotifierSettings
from services.tagger.settings import TaggerSettings
from shared.events import AlertKind, Severity
from tests.conftest import eventually
from tests.integration.console_browser import shot, signed_in, tagged_with
from tests.integration.servers import served_app
from tests.integration.test_notifier import publish_tagged, routing_file, tagged_event
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration
LEVELS = {
    "zh-CN": {"info": "提示", "warning": "警告", "critical": "严重"},
    "en": {"info": "Info", "warning": "Warning", "critical": "Critical"},
}


WHYS_IN_CHINESE = load_routing(DEFAULT_ROUTING_FILE).whys_in("zh-CN")


def cause_line(cause: dict[str, Any], reason: str, lang: str) -> str:
    """The urgent cause as the support page says it, its reason as the order page shows it:
    the routing rule's why in the reader's language (the file words each in Chinese)."""
    level = LEVELS[lang][cause["severity"]]
    if lang == "zh-CN":
        return f"紧急 · {level}（{WHYS_IN_CHINESE[cause['severity_why']]}）：{reason}"
    return f"Urgent · {level} ({cause['severity_why']}): {reason}"


async def test_an_orders_alerts_give_their_causes_in_the_readers_words_on_both_pages(
    console_url: str,
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    tmp_path: Path,
) -> None:
    # an order urgent to the end (its alert stays open, its urgent cause holding), of a VIP or
    # high-value customer: a severity rule of the routing file words its cause
    urgent = await mongo_db["orders"].find_one(
        {
            "$and": [{"tag_names": "urgent"}, {"tag_names": {"$in": ["vip", "high-value"]}}],
            "status": {"$in": ["pending", "processed"]},
        }
    )
    assert urgent is not None
    order_no = urgent["order_no"]
    notifier_settings = NotifierSettings(
        **tagger_settings.model_dump(exclude={"tagger_port"}),
        notifier_group_id=f"console-alerts-{run_id}",
        notifier_console_url=console_url,
    )

    async def raised() -> dict[str, Any] | None:
        holding = {"kind": "urgent", "cleared_at": None}
        return await mongo_db["alerts"].find_one(
            {"order_no": order_no, "status": "open", "causes": {"$elemMatch": holding}}
        )

    async with served_app(notifier_app(notifier_settings)), async_playwright() as playwright:
        alert = await eventually(raised, within=60)
        cause = next(c for c in alert["causes"] if c["kind"] == "urgent")
        assert cause["severity_why"] != default_why(AlertKind.URGENT, Severity(cause["severity"]))
        assert any("→ urgent" in stored for stored in alert["reasons"])  # English, for channels
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for lang in ("zh-CN", "en"):
            page = await signed_in(browser, console_url, "王小明", lang=lang)
            await page.goto(f"{console_url}/console/orders/{order_no}")
            reason = await page.locator("#applied li[data-tag='urgent'] .why").inner_text()
            why = page.locator(f"#alerts li[data-alert='{alert['alert_id']}'] .why")
            await expect(why).to_contain_text(cause_line(cause, reason, lang))
            if lang == "zh-CN":
                await why.scroll_into_view_if_needed()
                await shot(page, "order-alerts", tmp_path, full_page=False)

            await page.goto(f"{console_url}/console/customers/{alert['customer_id']}")
            why = page.locator(f"#alerts li[data-alert='{alert['alert_id']}'] .why")
            await expect(why).to_contain_text(cause_line(cause, reason, lang))
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

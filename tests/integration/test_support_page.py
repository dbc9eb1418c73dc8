"""The live support page in a real headless Chromium (Debian's, driven by Playwright)."""

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.i18n import LANG_COOKIE
from services.console.sessions import COOKIE as CONSOLE_COOKIE
from services.console.sessions import SessionStore
from services.console.settings import LOCAL_SESSION_SECRET
from services.console.users import Role, User, UserStore
from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from services.tagger.app import create_app as tagger_app
from services.tagger.order_record import OrderRecord
from services.tagger.read_model import ReadModel
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from services.tagger.settings import Role as TaggerRole
from services.tagger.store import OrderStore
from shared.auth import LOCAL_DEV_KEY
from shared.events import OrderTagged, utc_now
from shared.redis import make_redis
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import make_order
from tests.integration.servers import served_app
from tests.integration.test_notifier import publish_tagged, routing_file, tagged_event
from tests.integration.test_stored_forms import RULES, TEMPLATES

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "support-page.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def store_tagged_order(database: AsyncDatabase[dict[str, Any]], order_no: str) -> str:
    """The order as the tagger stores it (its rule set recorded, as a tagger does at start);
    answers the reason of its ``urgent`` tag as the console gives it in English."""
    order = make_order(order_no, shipping={"method": "same_day", "province": "上海"})
    figures = FiguresSnapshot()
    change = merge_tags(
        [],
        decide(RULES, order_facts(order, figures, order.status)),
        exclusive_families=RULES.exclusive_families,
        max_tags=20,
        at=utc_now(),
    )
    record = OrderRecord(order, order.status, change.tags, figures, applied_events=["e-1"])
    store = OrderStore(database, lambda: TEMPLATES)
    await store.ensure_indexes()
    assert await store.save([record], []) == set()
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    await RuleVersions(database).record(text, RULES, by="tagger")
    detail = await ReadModel(database, templates=lambda: TEMPLATES).order(order_no, "en")
    assert detail is not None
    return str(next(t["reason"] for t in detail["tags"] if t["name"] == "urgent"))


async def test_a_new_urgent_order_appears_live_and_can_be_acknowledged(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path, run_id: str
) -> None:
    notifier_settings = NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"page-{run_id}",
        notifier_routing_file=routing_file(tmp_path, [], []),
    )
    async with served_app(create_app(notifier_settings)) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        await page.goto(f"{url}/")
        await expect(page).to_have_url(f"{url}/login")  # nothing served without signing in
        await page.fill("#api_key", LOCAL_DEV_KEY)
        await page.click("button[type=submit]")
        await expect(page.locator("#status")).to_have_text("Live", timeout=10_000)

        order_no = f"{run_id}-live"
        urgent_because = await store_tagged_order(mongo_db, order_no)
        await publish_tagged(notifier_settings, [tagged_event(order_no, ["urgent", "vip"], "vip")])
        row = page.locator(f"tr[data-id='{order_no}:support']")
        await expect(row).to_be_visible(timeout=15_000)  # arrived without a reload
        await expect(row).to_contain_text("Critical")

        await row.locator("text=Claim").click()
        await expect(row).to_contain_text("claimed by local-dev")
        await row.click()
        await expect(page.locator("#detail")).to_contain_text(order_no)
        # the order's tags with their reasons in the reader's language, as the console's
        await expect(page.locator("#detail")).to_contain_text(urgent_because)
        # ORDERTAG_UPDATE_SCREENSHOT=1 refreshes the one in docs/
        shot = (
            DOCS_SCREENSHOT
            if os.environ.get("ORDERTAG_UPDATE_SCREENSHOT")
            else (tmp_path / "support-page.png")
        )
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        # the reason in words: the route's default severity said as such, not "urgent: critical
        # by default: ..."
        await expect(page.locator("#detail")).to_contain_text("Urgent · Critical (default)")
        await expect(page.locator("#detail")).not_to_contain_text("by default")

        await row.locator("text=Acknowledge").click()
        await expect(row).to_have_class(re.compile(r"\backnowledged\b"))
        # the row stays where it was while the person works with the list (the pointer on it,
        # its detail open); closing the detail lets the list catch up
        await page.click("#detail-close")
        await expect(row).to_be_hidden()  # the default filter shows open alerts only
        await page.select_option("#f-status", "")
        await expect(row).to_contain_text("acknowledged by local-dev")
        await browser.close()


async def test_the_consoles_session_opens_the_api_with_its_csrf_token_and_role(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    notifier_settings = NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"page-{run_id}",
        notifier_routing_file=routing_file(tmp_path, [], []),
    )
    redis = make_redis(settings)
    sessions = SessionStore(redis, LOCAL_SESSION_SECRET, 600)
    agent_cookie, agent = await sessions.open(User(name="agent-li", role=Role.AGENT))
    viewer_cookie, _ = await sessions.open(User(name="viewer-wu", role=Role.VIEWER))
    try:
        async with (
            served_app(create_app(notifier_settings)) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):

            async def call(method: str, path: str, cookie: str, **headers: str) -> int:
                client.cookies.set(CONSOLE_COOKIE, cookie)
                answer = await client.request(method, path, headers=headers)
                return answer.status_code

            assert await call("GET", "/api/alerts", agent_cookie) == 200
            assert await call("GET", "/", agent_cookie) == 200  # no second sign-in
            ack = f"/api/alerts/{run_id}:support/ack"
            assert await call("POST", ack, agent_cookie) == 403  # no CSRF token
            assert await call("POST", ack, agent_cookie, **{"X-CSRF-Token": "forged"}) == 403
            assert await call("POST", ack, agent_cookie, **{"X-CSRF-Token": agent.csrf}) == 404
            assert await call("GET", "/api/alerts", viewer_cookie) == 401  # role without alerts
            forged = agent_cookie.split(".")[0] + ".0000"
            assert await call("GET", "/api/alerts", forged) == 401
            await sessions.revoke(agent_cookie)  # signed out at the console
            assert await call("GET", "/api/alerts", agent_cookie) == 401
    finally:
        await redis.aclose()


def page_settings(settings: Settings, tmp_path: Path, run_id: str) -> NotifierSettings:
    """The page's sign-ins are counted per address in the one Redis every test shares: these
    tests sign in from 127.0.0.1 a dozen times a minute, past the default 10 (the limit has
    its own test, test_notifier_security)."""
    return NotifierSettings(
        **settings.model_dump(),
        notifier_group_id=f"page-{run_id}",
        notifier_routing_file=routing_file(tmp_path, [], []),
        notifier_login_rate_per_minute=10_000,
    )


async def sign_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#api_key", LOCAL_DEV_KEY)
    await page.click("button[type=submit]")
    await expect(page.locator("#status.live")).to_be_visible(timeout=10_000)


@asynccontextmanager
async def signed_in_page(
    settings: NotifierSettings,
) -> AsyncIterator[tuple[str, Page, httpx.AsyncClient]]:
    """The support page served and signed in with the local key at 1440 px, and a client of its
    API with the same key: the page's URL, the browser's page, the client."""
    async with (
        served_app(create_app(settings)) as url,
        async_playwright() as playwright,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": LOCAL_DEV_KEY}) as api,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await sign_in(page, url)
            yield url, page, api
        finally:
            await browser.close()


def again(event: OrderTagged, tags: list[str]) -> OrderTagged:
    """The order tagged again (a later event of its own)."""
    changed = tagged_event(event.order_no, tags)
    return changed.model_copy(update={"source_event_id": uuid.uuid4()})


# per header cell and per date: how many lines its text takes (1: not broken into letters)
LINES = """(nodes) => nodes.map((node) => {
  const range = document.createRange();
  range.selectNodeContents(node);
  const rects = [...range.getClientRects()].filter((r) => r.width > 0);
  return new Set(rects.map((r) => Math.round(r.top))).size;
})"""


async def test_every_column_is_readable_at_usual_widths_in_both_languages(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    notifier_settings = page_settings(settings, tmp_path, run_id)
    async with served_app(create_app(notifier_settings)) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await sign_in(page, url)
        order_no = f"{run_id}-wide"
        await publish_tagged(notifier_settings, [tagged_event(order_no, ["urgent", "vip"])])
        row = page.locator(f"tr[data-id='{order_no}:support']")
        for code in ("en", "zh-CN"):
            await page.context.add_cookies([{"name": LANG_COOKIE, "value": code, "url": url}])
            for width in (1280, 1440, 1920):
                await page.set_viewport_size({"width": width, "height": 900})
                await page.goto(f"{url}/")
                await expect(row).to_be_visible(timeout=15_000)
                where = f"{code} at {width} px"
                headers = await page.locator(".alerts-table th").evaluate_all(LINES)
                assert headers == [1] * 6 + [0], f"a header breaks ({where}): {headers}"
                dates = await row.locator(".c-what .nowrap").evaluate_all(LINES)
                assert dates == [1], f"the date wraps ({where})"
                sizes = await page.evaluate("""() => ({
                  wrap: document.querySelector(".table-wrap").getBoundingClientRect(),
                  table: document.querySelector(".alerts-table").getBoundingClientRect(),
                  detail: document.querySelector("#detail").getBoundingClientRect(),
                  cells: [...document.querySelectorAll("tr.alert td")]
                    .map((td) => td.scrollWidth - td.clientWidth)})""")
                assert sizes["table"]["width"] <= sizes["wrap"]["width"] + 1, where
                assert max(sizes["cells"]) <= 1, f"a cell's content overflows ({where})"
                assert sizes["detail"]["left"] >= sizes["table"]["right"], (
                    f"detail not beside ({where})"
                )
                kind = "Urgent" if code == "en" else "紧急"  # the kind's label, not its name
                await expect(row.locator(".c-what")).to_contain_text(kind)
                team = "Support" if code == "en" else "客服"  # the team's name, not its id
                await expect(row.locator(".team")).to_have_text(team)
        # the team filter offers the routing file's teams by name, and filters by id
        await page.select_option("#f-team", label="VIP 专席")
        await expect(row).to_be_hidden()
        await page.select_option("#f-team", label="客服")
        await expect(row).to_be_visible()
        await browser.close()


async def test_rows_stay_under_the_pointer_and_claim_acts_on_the_row_pressed(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    notifier_settings = page_settings(settings, tmp_path, run_id)
    first = tagged_event(f"{run_id}-first", ["urgent"])
    above = tagged_event(f"{run_id}-above", ["urgent"])  # newer: listed above the first
    later = [tagged_event(f"{run_id}-later-{n}", ["urgent"]) for n in range(2)]
    async with signed_in_page(notifier_settings) as (_, page, api):
        await publish_tagged(notifier_settings, [first])
        row = page.locator(f"tr[data-id='{first.order_no}:support']")
        await expect(row).to_be_visible(timeout=15_000)
        await publish_tagged(notifier_settings, [above])
        above_row = page.locator(f"tr[data-id='{above.order_no}:support']")
        await expect(above_row).to_be_visible(timeout=15_000)
        await row.evaluate("(tr) => { tr.dataset.mark = 'the same element'; }")
        box = await row.bounding_box()
        claim = row.locator("button[data-act=claim]")
        await claim.hover()  # the pointer on the list, about to press Claim

        # a colleague acknowledges the alert above (its buttons go, its row could shrink), new
        # alerts come, and the one under the pointer changes: held, nothing moves
        colleague = await api.post(f"/api/alerts/{above.order_no}:support/ack")
        assert colleague.status_code == 200
        await publish_tagged(notifier_settings, [*later, again(first, ["urgent", "new-order"])])
        held = page.locator("#held")
        await expect(held).to_have_text("4 new or changed alerts — show", timeout=15_000)
        await expect(row.locator(".c-tags")).not_to_contain_text("New order")  # not redrawn yet
        await expect(above_row.locator("button[data-act=claim]")).to_be_visible()
        assert await row.get_attribute("data-mark") == "the same element"
        assert await row.bounding_box() == box  # nothing went in above it, nothing shrank
        for event in later:
            await expect(page.locator(f"tr[data-id='{event.order_no}:support']")).to_have_count(0)

        ack = row.locator("button[data-act=ack]")
        ack_before = await ack.bounding_box()
        await claim.click()
        await expect(row).to_contain_text("claimed by local-dev")  # its own answer, at once
        await expect(row.locator(".c-tags")).to_contain_text("New order")
        # Acknowledge kept its place: Claim's slot stays, hidden, so a second click lands on
        # nothing rather than on Acknowledge
        await expect(row.locator("button[data-act=claim]")).to_be_hidden()
        assert await ack.bounding_box() == ack_before
        claimed = {
            a["order_no"]: a.get("claimed_by")
            for a in (await api.get("/api/alerts", params={"limit": 500})).json()
        }
        assert claimed[first.order_no] == "local-dev"
        assert [claimed[event.order_no] for event in later] == [None, None]

        await row.locator(".c-num").click()  # its detail open: the list stays held
        await expect(page.locator("#detail")).to_contain_text(first.order_no)
        await expect(held).to_be_visible()
        await held.click()  # shown on request, above; the row keeps its element
        await expect(above_row).to_have_count(0)  # acknowledged: off the open list
        for event in later:
            await expect(page.locator(f"tr[data-id='{event.order_no}:support']")).to_be_visible()
        await expect(held).to_be_hidden()
        assert await row.get_attribute("data-mark") == "the same element"
        ids = await page.locator("tr.alert").evaluate_all("(rows) => rows.map((r) => r.dataset.id)")
        assert ids.index(f"{first.order_no}:support") > ids.index(f"{later[0].order_no}:support")


async def test_the_sign_in_page_speaks_the_browsers_language_and_the_site_has_an_icon(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    notifier_settings = page_settings(settings, tmp_path, run_id)
    async with served_app(create_app(notifier_settings)) as url, async_playwright() as playwright:
        async with httpx.AsyncClient(base_url=url) as client:
            icon = await client.get("/favicon.ico")
            assert (icon.status_code, icon.headers["content-type"]) == (200, "image/x-icon")
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        chinese = await browser.new_context(
            locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"}
        )
        page = await chinese.new_page()
        await page.goto(f"{url}/login")
        await expect(page.locator("h1")).to_have_text("客服告警：登录")
        await expect(page.locator("form")).to_contain_text("API 密钥")
        await expect(page.locator("button[type=submit]")).to_have_text("登录")
        await page.fill("#api_key", "not the key")
        await page.click("button[type=submit]")
        await expect(page.locator("#err")).to_contain_text("登录失败")
        await page.click("#lang-switch")  # the console's language switch, back to this page
        await expect(page).to_have_url(re.compile(r"/login"))
        await expect(page.locator("h1")).to_have_text("Support alerts: sign in")
        await browser.close()


async def test_an_alert_raised_while_the_page_reads_its_list_is_not_missed(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    """The list read, then an alert raised before the page hears live changes: it must show
    without a reload. The page opens the live stream first and reads the list after (the
    list's answer is held here until the alert is stored, as a slow answer would be)."""
    notifier_settings = page_settings(settings, tmp_path, run_id)
    late = tagged_event(f"{run_id}-late", ["urgent"])
    async with signed_in_page(notifier_settings) as (url, page, api):

        async def stored() -> bool:
            listed = (await api.get("/api/alerts", params={"limit": 500})).json()
            return any(a["order_no"] == late.order_no for a in listed)

        async def read_before_the_alert(route: Any) -> None:
            answer = await route.fetch()  # the list as it stands: without the alert
            await publish_tagged(notifier_settings, [late])
            await eventually(stored, within=15)
            await route.fulfill(response=answer)

        await page.route("**/api/alerts?limit=500", read_before_the_alert)
        await page.goto(f"{url}/")
        row = page.locator(f"tr[data-id='{late.order_no}:support']")
        await expect(row).to_be_visible(timeout=15_000)


async def test_the_open_detail_follows_its_alert_while_the_list_stays_held(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    """The detail says what became of its alert: this page's claim and acknowledgement, a
    colleague's claim, the alert resolving; the rows listed meanwhile stay as they were."""
    notifier_settings = page_settings(settings, tmp_path, run_id)
    mine = tagged_event(f"{run_id}-mine", ["urgent"])
    theirs = tagged_event(f"{run_id}-theirs", ["urgent"])
    redis = make_redis(settings)
    colleague_cookie, colleague = await SessionStore(redis, LOCAL_SESSION_SECRET, 600).open(
        User(name="agent-li", role=Role.AGENT)
    )
    try:
        async with (
            signed_in_page(notifier_settings) as (url, page, _),
            httpx.AsyncClient(
                base_url=url,
                cookies={CONSOLE_COOKIE: colleague_cookie},
                headers={"X-CSRF-Token": colleague.csrf},
            ) as colleague_api,
        ):
            await publish_tagged(notifier_settings, [mine, theirs])
            row = page.locator(f"tr[data-id='{mine.order_no}:support']")
            their_row = page.locator(f"tr[data-id='{theirs.order_no}:support']")
            await expect(row).to_be_visible(timeout=15_000)
            await expect(their_row).to_be_visible(timeout=15_000)
            status = page.locator("#detail dd[data-field=status]")
            who = page.locator("#detail dd[data-field=who]")

            await row.locator(".c-num").click()
            await expect(status).to_have_text("Open")
            await expect(who).to_have_count(0)
            await row.locator("button[data-act=claim]").click()
            await expect(who).to_have_text("claimed by local-dev")
            await expect(status).to_have_text("Open")
            await row.locator("button[data-act=ack]").click()
            await expect(status).to_have_text("Acknowledged")
            await expect(who).to_contain_text("acknowledged by local-dev")

            # another alert's detail, the pointer on the list: a colleague's claim and the alert
            # resolving show in the detail, its row keeps what it showed until released
            await their_row.locator(".c-num").click()
            await expect(page.locator("#detail")).to_contain_text(theirs.order_no)
            await expect(status).to_have_text("Open")
            await their_row.evaluate("(tr) => { tr.dataset.mark = 'the same element'; }")
            box = await their_row.bounding_box()
            claimed = await colleague_api.post(f"/api/alerts/{theirs.order_no}:support/claim")
            assert claimed.status_code == 200
            await expect(who).to_have_text("claimed by agent-li", timeout=15_000)
            await publish_tagged(notifier_settings, [again(theirs, ["new-order"])])
            await expect(status).to_have_text("Resolved", timeout=15_000)
            await expect(page.locator("#held")).to_be_visible()
            await expect(their_row.locator(".c-who")).to_have_text("")
            await expect(their_row.locator("button[data-act=claim]")).to_be_visible()
            assert await their_row.get_attribute("data-mark") == "the same element"
            assert await their_row.bounding_box() == box

            await page.click("#detail-close")  # the list catches up
            await expect(their_row).to_have_count(0)  # resolved: off the open list
            await page.select_option("#f-status", "")
            await expect(their_row.locator(".c-who")).to_have_text("claimed by agent-li")
    finally:
        await redis.aclose()


async def test_the_tag_filter_takes_a_tag_by_the_label_people_see(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    """Staff type the label a badge shows (VIP客户, 紧急, "VIP"), in any case; the machine name
    still works, and the placeholder gives a label of the reader's language as its example."""
    notifier_settings = page_settings(settings, tmp_path, run_id)
    event = tagged_event(f"{run_id}-labels", ["urgent", "vip"])
    async with signed_in_page(notifier_settings) as (url, page, _):
        await publish_tagged(notifier_settings, [event])
        row = page.locator(f"tr[data-id='{event.order_no}:support']")
        await expect(row).to_be_visible(timeout=15_000)
        typed = {
            "zh-CN": (["VIP客户", "vip客户", "紧急", " 紧急 ", "VIP", "urgent"], ["常规", "VIP客"]),
            "en": (["VIP", "vip", "Urgent", "URGENT", "urgent"], ["Regular", "紧急", "VIP客户"]),
        }
        placeholder = {"zh-CN": "标签，如 紧急", "en": "Tag, e.g. Urgent"}
        for code, (found, not_found) in typed.items():
            await page.context.add_cookies([{"name": LANG_COOKIE, "value": code, "url": url}])
            await page.goto(f"{url}/")
            await expect(page.locator("#f-tag")).to_have_attribute("placeholder", placeholder[code])
            await expect(row).to_be_visible(timeout=15_000)
            for text in found:
                await page.fill("#f-tag", text)
                await expect(row, f"{text!r} in {code}").to_be_visible()
            for text in not_found:
                await page.fill("#f-tag", text)
                await expect(row, f"{text!r} in {code}").to_be_hidden()


async def test_the_console_account_signs_in_at_the_console_and_comes_back_to_the_alerts(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path, run_id: str
) -> None:
    """The sign-in page says which way is for a console account and what its own fields are
    for; the console's sign-in then leads back to the alerts, through the console's own
    /console/alerts (the console takes only its own paths as ``next``: no open redirect)."""
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create("王小明", Role.AGENT, "correct horse battery")
    console = tagger_app(
        TaggerSettings(**settings.model_dump(), tagger_roles=frozenset({TaggerRole.API}))
    )
    async with served_app(console) as console_url:
        notifier_settings = page_settings(settings, tmp_path, run_id).model_copy(
            update={"notifier_console_url": console_url}
        )
        async with (
            served_app(create_app(notifier_settings)) as url,
            async_playwright() as playwright,
            httpx.AsyncClient(base_url=console_url) as client,
        ):
            console.state.console_settings = console.state.console_settings.model_copy(
                update={"console_alerts_url": f"{url}/"}
            )
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            english = await browser.new_page(extra_http_headers={"Accept-Language": "en"})
            await english.goto(f"{url}/login")
            await expect(english.locator("#console-hint")).to_contain_text("console account")
            await expect(english.locator("#own-hint")).to_contain_text(
                "ORDERTAG_NOTIFIER_PAGE_USERS"
            )
            await expect(english.locator("#own-hint")).to_contain_text(
                "Console accounts do not work here"
            )
            await english.screenshot(path=str(tmp_path / "sign-in-en.png"), full_page=True)

            context = await browser.new_context(
                locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"}
            )
            page = await context.new_page()
            await page.goto(f"{url}/")
            await expect(page).to_have_url(f"{url}/login")
            await expect(page.locator("#console-hint")).to_contain_text("回到本页")
            await expect(page.locator("#own-hint")).to_contain_text("ORDERTAG_NOTIFIER_PAGE_USERS")
            await expect(page.locator("#own-hint")).to_contain_text("控制台账号在这里不能登录")
            await page.fill("#user", "王小明")  # a console account in the page's own fields
            await page.fill("#password", "correct horse battery")
            await page.click("form button[type=submit]")
            await expect(page.locator("#err")).to_contain_text("用控制台账号登录")
            await page.screenshot(path=str(tmp_path / "sign-in-zh.png"), full_page=True)

            await page.click("#console-sign-in")
            await expect(page).to_have_url(re.compile(re.escape(f"{console_url}/console/login")))
            await page.fill("#name", "王小明")
            await page.fill("#password", "correct horse battery")
            await page.click("form button[type=submit]")
            await expect(page).to_have_url(f"{url}/")  # back on the alerts, signed in
            await expect(page.locator("#status.live")).to_be_visible(timeout=10_000)
            await expect(page.locator("nav [aria-current=page]")).to_have_text("告警")
            await browser.close()

            # the way back goes only where the console is configured to go
            away = await client.get("/console/alerts", params={"next": "https://evil.example/"})
            assert (away.status_code, away.headers["location"]) == (303, f"{url}/")
            for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
                signed_in = await client.post(
                    "/console/login",
                    data={"name": "王小明", "password": "correct horse battery", "next": elsewhere},
                )
                location = signed_in.headers["location"]  # a path of the console's site
                assert urlsplit(location)[:2] == ("", ""), location
                assert location.startswith("/"), location
                assert "\\" not in location, location


async def test_the_pages_words_are_labels_in_english_and_chinese_asides_take_chinese_brackets(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    """English labels start with a capital and say "acknowledged by", not "ack by"; Chinese
    asides are in full-width brackets, also around a routing rule's own (警告（…（金额较小））)."""
    notifier_settings = NotifierSettings(  # the default routing file: rules with their whys
        **settings.model_dump(), notifier_group_id=f"page-{run_id}"
    )
    event = tagged_event(f"{run_id}-words", ["urgent", "vip"], "vip")
    async with signed_in_page(notifier_settings) as (url, page, _):
        await page.set_viewport_size({"width": 1366, "height": 860})
        await publish_tagged(notifier_settings, [event])
        row = page.locator(f"tr[data-id='{event.order_no}:support']")
        detail = page.locator("#detail")
        for code in ("zh-CN", "en"):
            await page.context.add_cookies([{"name": LANG_COOKIE, "value": code, "url": url}])
            await page.goto(f"{url}/")
            await row.locator(".c-num").click()
            await expect(detail.locator("dd[data-field=why]")).not_to_be_empty(timeout=15_000)
            if code == "zh-CN":
                await expect(detail.locator("dd[data-field=why]")).to_contain_text(
                    "紧急 · 警告（VIP 或高价值客户的紧急订单（金额较小））"
                )
                shown = await row.inner_text() + await detail.inner_text()
                assert not {"(", ")"} & set(shown), shown
                await page.screenshot(path=str(tmp_path / "words-zh.png"), full_page=True)
        options = "(select) => [...select.options].map((o) => o.text)"
        assert await page.locator("#f-status").evaluate(options) == [
            "Open",
            "All",
            "Acknowledged",
            "Resolved",
        ]
        assert await page.locator("#f-severity").evaluate(options) == [
            "Any severity",
            "Critical",
            "Warning",
            "Info",
        ]
        headers = await page.locator(".alerts-table th").all_inner_texts()
        assert headers == ["Severity", "Alert", "Order", "Amount", "Tags", "Who", ""]
        await expect(page.locator("#status")).to_have_text("Live")
        await expect(detail.locator("dd[data-field=why]")).to_contain_text(
            "Urgent · Warning (urgent order of a VIP or high-value customer, small basket)"
        )
        terms = await detail.locator("dt").all_inner_texts()
        assert terms == ["Severity", "Status", "Customer", "Amount", "Order status", "Why"]
        assert await detail.locator("h2").all_inner_texts() == [
            f"Urgent · {event.order_no}",
            "Tags",
            "Deliveries",
        ]
        await expect(detail).to_contain_text("Page only")
        await expect(detail.locator("a.btn")).to_have_text("Open the order")
        await row.locator("button[data-act=ack]").click()
        await expect(row.locator(".c-who")).to_have_text("acknowledged by local-dev")
        await expect(detail.locator("dd[data-field=status]")).to_have_text("Acknowledged")
        await page.set_viewport_size({"width": 1280, "height": 860})  # its column's narrowest
        lines = await row.locator(".c-who div").evaluate_all(LINES)
        assert lines == [2], f"'acknowledged by local-dev' broken inside a word: {lines}"
        await page.screenshot(path=str(tmp_path / "words-en.png"), full_page=True)


async def test_a_long_queue_shows_its_count_and_the_newest_hundred_then_more_on_request(
    settings: Settings, tmp_path: Path, run_id: str
) -> None:
    """A desk's list of open alerts ran to hundreds of rows (a page 30,000 px long): it says
    how many match and lists the newest 100, the rest a click away; a change of filter starts
    again from the first hundred."""
    notifier_settings = page_settings(settings, tmp_path, run_id)
    wave = f"wave-{run_id}".lower()
    events = [tagged_event(f"{run_id}-q{i:03d}", ["urgent", wave]) for i in range(103)]
    async with signed_in_page(notifier_settings) as (_, page, _api):
        await publish_tagged(notifier_settings, events)
        await page.fill("#f-tag", wave)
        rows = page.locator("#alerts tr.alert")
        await expect(page.locator("#count")).to_have_text("103 alerts", timeout=30_000)
        await expect(rows).to_have_count(100)
        more = page.locator("#more")
        await expect(more).to_have_text("Show 3 more (of 103)")
        await more.click()
        await expect(rows).to_have_count(103)
        await expect(more).to_be_hidden()
        await page.fill("#f-tag", "")
        await page.fill("#f-tag", wave)
        await expect(rows).to_have_count(100)


async def test_badges_wear_the_catalogs_colours_and_a_businesss_own_labels(
    settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    tmp_path: Path,
    run_id: str,
) -> None:
    """A tag the business made (回访, in its colour) reads on the support page as it does in the
    console: it was a grey badge showing its machine name."""
    await mongo_db["tag_catalog"].insert_one(
        {"name": "callback", "colour": "#0d9488", "labels": {"zh-CN": "回访", "en": "Call back"}}
    )
    notifier_settings = page_settings(settings, tmp_path, run_id)
    event = tagged_event(f"{run_id}-looks", ["urgent", "callback"])
    async with signed_in_page(notifier_settings) as (_, page, _api):
        await publish_tagged(notifier_settings, [event])
        badge = page.locator(f"tr[data-id='{event.order_no}:support'] .tag[data-tag='callback']")
        await expect(badge).to_have_text("Call back", timeout=30_000)
        colour = await badge.evaluate("b => getComputedStyle(b).color")
        assert colour == "rgb(13, 148, 136)", colour

"""The console's Rules page in a real headless Chromium against the tagger on the real stack:
versions, a candidate's diff against the active rules, the shadow run, activate and roll back
with a backfill (admin), no buttons and a refusal for a viewer, in Chinese and English."""

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.tagger.app import create_app
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import version_of
from services.tagger.rules.schema import parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from shared.events import OrderCreated
from tests.conftest import eventually
from tests.generated import order_stream
from tests.integration.conftest import publish_events, wait_for_orders
from tests.integration.console_browser import PASSWORD, shot, signed_in
from tests.integration.servers import served_app
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration

ACTIVE_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
CANDIDATE_TEXT = ACTIVE_TEXT.replace(
    "when: {fact: amount, gte: 50000}", "when: {fact: amount, gte: 2000}"
)


async def big_customers(db: AsyncDatabase[dict[str, Any]]) -> set[str]:
    cursor = db["orders"].find({"tag_names": "big-customer"}, {"order_no": 1})
    return {d["order_no"] async for d in cursor}


async def job_done(db: AsyncDatabase[dict[str, Any]], job_id: str) -> bool:
    job = await db["tag_jobs"].find_one({"job_id": job_id})
    return job is not None and job["status"] == "done"


async def test_admins_diff_activate_and_roll_back_and_viewers_only_look(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    tmp_path: Path,
) -> None:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create("王小明", Role.ADMIN, PASSWORD)
    await users.create("viewer", Role.VIEWER, PASSWORD)
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    active, candidate = version_of(ACTIVE_TEXT), version_of(CANDIDATE_TEXT)
    await versions.record(
        CANDIDATE_TEXT,
        parse_rules(CANDIDATE_TEXT),
        by="ops",
        comment="大客户 2,000 起",
        active=False,
    )
    await versions.start_shadow(candidate)
    events, _ = order_stream(120, customers=15, seed=8, prefix=run_id)
    await publish_events(tagger_settings, events)
    app = create_app(tagger_settings)
    async with served_app(app) as url, async_playwright() as playwright:
        created = sum(isinstance(e, OrderCreated) for e in events)
        await wait_for_orders(mongo_db, created, len(events), within=90)
        before = await big_customers(mongo_db)
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "王小明")
        await page.goto(f"{url}/console/rules")

        await expect(page.locator("#rv-active")).to_have_attribute("data-version", active)
        await expect(page.locator(f"#versions tr[data-version='{active}']")).to_have_attribute(
            "data-state", "active"
        )
        row = page.locator(f"#versions tr[data-version='{candidate}']")
        await expect(row).to_have_attribute("data-state", "shadow")
        await expect(row).to_contain_text("大客户 2,000 起")
        await expect(page.locator("#rs-summary")).to_contain_text(candidate)
        await expect(page.locator("#shadow-diffs tbody tr").first).to_contain_text("新增")

        rules_table = page.locator("#rules")
        big_rule = page.locator("#rules tr[data-rule='customer.big']")
        await expect(rules_table).to_have_attribute("data-version", active)
        await expect(big_rule).to_contain_text("50,000")

        # the diff is a job: the page follows it to its report, which the version keeps
        await row.locator("[data-action=diff]").click()
        await expect(page.locator("#rule-diff")).to_have_attribute("data-status", "done")
        gaining = page.locator("#diff-tags tr[data-tag='big-customer'] .gained")
        await expect(gaining).not_to_have_text("+0")
        await expect(page.locator("#rd-summary")).to_contain_text("未写入任何数据")
        diff_job = await page.locator("#rule-diff").get_attribute("data-job")
        kept = await versions.get(candidate)
        assert kept is not None
        assert kept.last_diff is not None
        assert (kept.last_diff["job_id"], kept.last_diff["status"]) == (diff_job, "done")
        await expect(row.locator("[data-action=show-diff]")).to_contain_text("会变化")
        # every changed order as CSV, downloaded as the person signed in
        csv_link = page.locator("#rd-csv")
        await expect(csv_link).to_be_visible()
        async with page.expect_download() as downloading:
            await csv_link.click()
        changes = (await (await downloading.value).path()).read_bytes()
        assert changes.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
        lines = changes.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("order_no")
        assert len(lines) > 1
        await shot(page, "rules-versions", tmp_path)

        # activate with a backfill of every stored order: the orders follow
        await row.locator("[data-action=activate]").click()
        await expect(page.locator("#activate-dialog")).to_contain_text(candidate)
        await page.click("#ad-confirm")
        await expect(page.locator("#rv-job")).to_have_attribute("data-status", "done")
        first_job = await page.locator("#rv-job").get_attribute("data-job")
        assert first_job is not None
        assert await job_done(mongo_db, first_job)
        await expect(page.locator("#rv-active")).to_have_attribute("data-version", candidate)
        after = await big_customers(mongo_db)
        assert after > before  # more orders are big customers under the candidate
        # the rule table shows the rules now in force, without a reload
        await expect(rules_table).to_have_attribute("data-version", candidate)
        await expect(big_rule).to_contain_text("2,000")
        # the customer rules, refreshed with the rules: the returning customers counted
        returning = page.locator("#customer-rules tr[data-rule='lifecycle.returning']")
        await expect(returning).to_contain_text("累计订单数 ≥ 2")
        await expect(returning.locator("td.num")).not_to_have_text("0")
        await shot(page, "rules-activated", tmp_path)

        # roll back: the earlier version's row offers it, and the tags come back
        earlier = page.locator(f"#versions tr[data-version='{active}']")
        await expect(earlier).to_have_attribute("data-state", "earlier")
        await earlier.locator("[data-action=rollback]").click()
        await page.click("#ad-confirm")
        await expect(page.locator("#rv-active")).to_have_attribute("data-version", active)
        await expect(rules_table).to_have_attribute("data-version", active)
        await expect(big_rule).to_contain_text("50,000")
        # the rows the page drew from the table's JSON keep the value beside its operator
        assert "≥\N{NO-BREAK SPACE}50,000" in (await big_rule.text_content() or "")
        await expect(page.locator("#rv-job")).not_to_have_attribute("data-job", first_job)
        await expect(page.locator("#rv-job")).to_have_attribute("data-status", "done")
        assert await eventually(lambda: _same(mongo_db, before), within=20)

        await page.click("#lang-switch")
        await expect(page.locator("#rv-title")).to_have_text("Rule-set versions")
        await expect(page.locator("#rv-active")).to_contain_text(f"Active: {active}")
        await expect(big_rule).to_contain_text("Order amount ≥ 50,000")
        await expect(returning).to_contain_text("Total orders ≥ 2")
        # a yes/no fact as a phrase; labels after a cell's first word in lower case
        vip = page.locator("#rules tr[data-rule='priority.vip-large-order']")
        await expect(vip).to_contain_text(
            "(VIP flag is set or lifetime spend ≥ 500,000) and order amount ≥ 5,000"
        )
        await expect(vip).to_contain_text("Order status is one of [Pending, Processing]")
        # the kept diff, shown again in English from the version's row
        await row.locator("[data-action=show-diff]").click()
        await expect(page.locator("#rd-summary")).to_contain_text("Nothing was written")
        await expect(gaining).not_to_have_text("+0")
        await shot(page, "rules-rolled-back-en", tmp_path)
        await browser.close()

        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await signed_in(browser, url, "viewer")
        await page.goto(f"{url}/console/rules")
        await expect(page.locator(f"#versions tr[data-version='{candidate}']")).to_be_visible()
        await expect(page.locator("#rv-readonly")).to_be_visible()
        changing = "#versions [data-action]:not([data-action=show-diff]), #activate-dialog"
        assert await page.locator(changing).count() == 0
        # reading a kept diff is for everyone who may read
        viewed = page.locator(f"#versions tr[data-version='{candidate}'] [data-action=show-diff]")
        await viewed.click()
        await expect(page.locator("#rule-diff")).to_have_attribute("data-status", "done")
        await expect(
            page.locator("#diff-tags tr[data-tag='big-customer'] .gained")
        ).not_to_have_text("+0")
        status = await page.evaluate(
            """async (version) => {
                const boot = JSON.parse(document.getElementById("boot").textContent);
                const answer = await fetch("/rules/active", {method: "PUT",
                    headers: {"Content-Type": "application/json", "X-CSRF-Token": boot.csrf},
                    body: JSON.stringify({version})});
                return answer.status;
            }""",
            candidate,
        )
        assert status == 403
        await browser.close()


async def _same(db: AsyncDatabase[dict[str, Any]], expected: set[str]) -> bool:
    return await big_customers(db) == expected

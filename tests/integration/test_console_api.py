"""The console's sign-in, sessions and its own endpoints, over the real stack (in-process app)."""

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from pymongo.asynchronous.database import AsyncDatabase

from services.console.i18n import LANG_COOKIE, language
from services.console.sessions import COOKIE, CSRF_HEADER
from services.console.settings import ConsoleSettings
from services.console.users import Role, UserStore
from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings
from shared.events import OrderCreated
from tests.generated import order_stream
from tests.integration.conftest import api_client, publish_events, wait_for_orders

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; answers the CSRF token the console page carries."""
    answer = await client.post("/console/login", data={"name": name, "password": password})
    assert answer.status_code == 303, answer.text
    page = await client.get("/console/")
    assert page.status_code == 200
    boot = re.search(r'<script id="boot" type="application/json">(.*?)</script>', page.text)
    assert boot is not None
    csrf: str = json.loads(boot.group(1))["csrf"]
    return csrf


@pytest.fixture
async def console(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[httpx.AsyncClient]:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    for role in Role:
        await users.create(f"{role.value}-{run_id}", role, PASSWORD)
    events, _ = order_stream(40, customers=8, seed=5, prefix=run_id)
    await publish_events(tagger_settings, events)
    async with api_client(create_app(tagger_settings), key=None) as client:
        created = sum(isinstance(e, OrderCreated) for e in events)
        await wait_for_orders(mongo_db, created, len(events), within=60)
        yield client


async def test_without_a_key_or_a_session_the_tag_api_refuses(
    console: httpx.AsyncClient,
) -> None:
    assert (await console.get("/orders")).status_code == 401
    page = await console.get("/console/tags")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login")


async def test_a_wrong_password_is_refused(console: httpx.AsyncClient, run_id: str) -> None:
    answer = await console.post(
        "/console/login", data={"name": f"admin-{run_id}", "password": "not the password"}
    )
    assert answer.status_code == 401
    assert COOKIE not in answer.cookies
    assert (await console.get("/orders")).status_code == 401


async def test_a_session_reads_the_tag_api_and_signing_out_revokes_it(
    console: httpx.AsyncClient, run_id: str
) -> None:
    csrf = await sign_in(console, f"agent-{run_id}")
    stolen = console.cookies[COOKIE]
    answer = await console.get("/orders", params={"limit": 5})
    assert answer.status_code == 200
    assert len(answer.json()["orders"]) == 5

    signed_out = await console.post("/console/logout", data={"csrf": csrf})
    assert signed_out.status_code == 303
    console.cookies.set(COOKIE, stolen)  # a copy of the cookie dies with the session
    assert (await console.get("/orders")).status_code == 401


async def test_a_cookie_with_a_forged_signature_is_no_session(
    console: httpx.AsyncClient, run_id: str
) -> None:
    await sign_in(console, f"admin-{run_id}")
    session_id, _, _ = console.cookies[COOKIE].partition(".")
    console.cookies.set(COOKIE, f"{session_id}.{'0' * 64}")
    assert (await console.get("/orders")).status_code == 401


async def test_a_change_needs_the_sessions_csrf_token(
    console: httpx.AsyncClient, run_id: str
) -> None:
    csrf = await sign_in(console, f"agent-{run_id}")
    [order] = (await console.get("/orders", params={"limit": 1})).json()["orders"]
    change = {"add": ["urgent"], "reason": "customer called"}
    path = f"/orders/{order['order_no']}/tags"

    refused = await console.post(path, json=change)
    forged = await console.post(path, json=change, headers={CSRF_HEADER: "forged"})
    accepted = await console.post(path, json=change, headers={CSRF_HEADER: csrf})

    assert refused.status_code == 403
    assert CSRF_HEADER in refused.json()["detail"]
    assert forged.status_code == 403
    assert accepted.status_code == 200, accepted.text
    detail = (await console.get(f"/orders/{order['order_no']}")).json()
    manual = [t for t in detail["tags"] if t["name"] == "urgent"]
    assert manual
    assert manual[0]["by"] == f"agent-{run_id}"


async def test_a_viewer_reads_but_the_server_refuses_its_edits(
    console: httpx.AsyncClient, run_id: str
) -> None:
    csrf = await sign_in(console, f"viewer-{run_id}")
    [order] = (await console.get("/orders", params={"limit": 1})).json()["orders"]
    page = await console.get(f"/console/orders/{order['order_no']}")

    answer = await console.post(
        f"/orders/{order['order_no']}/tags",
        json={"add": ["urgent"]},
        headers={CSRF_HEADER: csrf},
    )

    assert answer.status_code == 403
    assert 'id="manual"' not in page.text  # no edit form for a viewer


async def test_saved_views_are_shared_with_their_counts(
    console: httpx.AsyncClient, run_id: str, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    csrf = await sign_in(console, f"agent-{run_id}")
    saved = await console.post(
        "/console/api/views",
        json={"name": "华东 待处理", "filter": {"region": "east-china", "status": "pending"}},
        headers={CSRF_HEADER: csrf},
    )
    assert saved.status_code == 201, saved.text
    expected = await mongo_db["orders"].count_documents(
        {"region": "east-china", "status": "pending"}
    )

    await sign_in(console, f"viewer-{run_id}")  # another person of the team sees it
    views = (await console.get("/console/api/views")).json()

    assert [(v["name"], v["count"], v["by"]) for v in views] == [
        ("华东 待处理", expected, f"agent-{run_id}")
    ]


async def test_exports_open_in_excel_with_chinese_labels(
    console: httpx.AsyncClient, run_id: str, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    await sign_in(console, f"viewer-{run_id}")
    which = {"params": {"filter": json.dumps({"any_tags": ["regular", "urgent"]})}}
    total = await mongo_db["orders"].count_documents({"tag_names": {"$in": ["regular", "urgent"]}})

    as_csv = await console.get("/console/api/orders/export.csv", **which)
    as_xlsx = await console.get(
        "/console/api/orders/export.xlsx", params={**which["params"], "tz": "+08:00"}
    )
    as_london = await console.get(
        "/console/api/orders/export.xlsx", params={**which["params"], "tz": "Europe/London"}
    )
    no_zone = await console.get("/console/api/orders/export.xlsx", params={"tz": "Mars/Olympus"})
    bad = await console.get("/console/api/orders/export.csv", params={"filter": '{"tags": 1}'})

    assert as_csv.content.startswith(b"\xef\xbb\xbf")
    lines = as_csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("订单号,客户,状态")
    assert len(lines) == total + 1
    sheet = load_workbook(io.BytesIO(as_xlsx.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "订单号"
    assert len(rows) == total + 1
    assert any("紧急" in (row[7] or "") or "常规" in (row[7] or "") for row in rows[1:])
    # amounts Excel sums and times it sorts, on the reader's clock (the header names it)
    assert rows[0][6] == "下单时间 (UTC+08:00)"
    [in_csv] = [r for r in csv.reader(lines[1:]) if r[0] == rows[1][0]]  # as text there
    assert isinstance(rows[1][3], int | float)
    assert rows[1][3] == pytest.approx(float(in_csv[3]))
    shanghai = datetime.fromisoformat(in_csv[6]).astimezone(timezone(timedelta(hours=8)))
    assert abs(rows[1][6] - shanghai.replace(tzinfo=None)) < timedelta(seconds=1)
    # by the zone's name (what the page sends): each row at its own date's offset there
    london = load_workbook(io.BytesIO(as_london.content), read_only=True).active
    london_rows = list(london.iter_rows(values_only=True))
    in_london = datetime.fromisoformat(in_csv[6]).astimezone(ZoneInfo("Europe/London"))
    assert london_rows[1][0] == rows[1][0]
    assert abs(london_rows[1][6] - in_london.replace(tzinfo=None)) < timedelta(seconds=1)
    assert no_zone.status_code == 422
    assert [e["field"] for e in no_zone.json()["errors"]] == ["tz"]
    assert "Mars/Olympus" in no_zone.json()["errors"][0]["problem"]
    assert bad.status_code == 422
    assert "filter.tags" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "订单状态为{status}"), ("en", "order status is {status}")],
)
async def test_an_orders_explanation_and_its_tags_read_in_the_staffs_language(
    console: httpx.AsyncClient,
    run_id: str,
    mongo_db: AsyncDatabase[dict[str, Any]],
    lang: str,
    words: str,
) -> None:
    await sign_in(console, f"viewer-{run_id}")
    console.cookies.set(LANG_COOKIE, lang)
    stored = await mongo_db["orders"].find_one({"order_no": {"$regex": f"^{run_id}"}})
    assert stored is not None
    order_no, status = stored["order_no"], stored["status"]
    expected = words.format(status=language(lang).labels["statuses"][status])

    explained = await console.get(f"/console/api/orders/{order_no}/explain")
    detail = await console.get(f"/orders/{order_no}", params={"lang": lang})

    assert explained.status_code == detail.status_code == 200, explained.text
    reasons = {r["rule_id"]: r["reason"] for r in explained.json()["rules"]}
    assert reasons["status"] == expected
    [tag] = [t for t in detail.json()["tags"] if t["rule_id"] == "status"]
    assert tag["reason"] == expected


async def test_the_session_cookie_is_secure_outside_local(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create(f"admin-{run_id}", Role.ADMIN, PASSWORD)
    app = create_app(tagger_settings)
    app.state.console_settings = ConsoleSettings(env="production", console_session_secret="s" * 40)
    async with api_client(app, key=None) as client:
        answer = await client.post(
            "/console/login", data={"name": f"admin-{run_id}", "password": PASSWORD}
        )
        local_hint = await client.get("/console/login")
    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 303
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert 'id="local-hint"' not in local_hint.text


async def test_rule_hits_count_the_rules_named_as_their_family_and_no_manual_tags(
    console: httpx.AsyncClient, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> None:
    """A stored tag names no rule where the rule is named as its family (status, category,
    region): those are the rule's hits, not a person's."""
    await sign_in(console, f"viewer-{run_id}")
    orders = await mongo_db["orders"].count_documents({})

    rows = (await console.get("/console/api/reports/rule-hits")).json()
    hits = {row["rule_id"]: row["orders"] for row in rows}
    gives = {row["rule_id"]: (row["tag"], row["family"]) for row in rows}

    assert hits["status"] == orders  # every order has its status tag
    assert hits["region"] == orders
    assert "manual" not in hits  # nobody tagged by hand
    # what each rule gives, for the page to word: its tag, or its family (named from a fact)
    assert gives["status"] == (None, "status")
    assert gives["default.priority"] == ("regular", "priority")
    assert all(tag or family for tag, family in gives.values()), gives
    assert sum(hits.values()) == sum(
        [len(d["tags"]) async for d in mongo_db["orders"].find({}, {"tags": 1})]
    )

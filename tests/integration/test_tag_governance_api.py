"""Tag governance on the real stack: permissions through the Tag API (keys and console sessions),
near-duplicates refused, labels per language (a former built-in one replaced), tags named in
Chinese."""

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.console.users import Role, UserStore
from services.tagger.app import create_app
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE, TaggerSettings
from services.tagger.store import OrderStore
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY, ApiKey, Scope, hash_key
from shared.events import OrderCreated
from tests.conftest import eventually
from tests.factories import make_order
from tests.integration.conftest import api_client, publish_events, wait_for_orders
from tests.integration.test_console_api import PASSWORD, sign_in

pytestmark = pytest.mark.integration
TAGGING = {Scope.READ, Scope.TAG}


@pytest.fixture
async def api(
    tagger_settings: TaggerSettings, mongo_db: AsyncDatabase[dict[str, Any]], run_id: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The Tag API with an admin, an agent and a manager key, and two orders: a VIP customer's
    (the rules tag it ``vip``) and a plain one."""
    keys = {"admin": LOCAL_DEV_KEY, "agent": f"agent-{run_id}", "manager": f"manager-{run_id}"}
    api_keys = [
        *tagger_settings.api_keys,
        ApiKey(name=f"agent-{run_id}", sha256=hash_key(keys["agent"]), scopes=TAGGING),
        ApiKey(
            name=f"manager-{run_id}",
            sha256=hash_key(keys["manager"]),
            scopes=TAGGING,
            role="manager",
        ),
    ]
    vip = make_order(f"{run_id}-VIP", customer={"id": f"{run_id}-C1", "name": "王芳", "vip": True})
    plain = make_order(f"{run_id}-PLAIN", customer={"id": f"{run_id}-C2", "name": "李雷"})
    await publish_events(tagger_settings, [OrderCreated(order=vip), OrderCreated(order=plain)])
    settings = tagger_settings.model_copy(update={"api_keys": api_keys})
    async with api_client(create_app(settings)) as client:
        await wait_for_orders(mongo_db, 2, 2, within=60)
        yield client, keys


def as_role(keys: dict[str, str], role: str) -> dict[str, str]:
    return {API_KEY_HEADER: keys[role]}


async def test_an_agent_may_not_set_or_remove_vip_and_the_answer_names_the_tag_and_role(
    api: tuple[httpx.AsyncClient, dict[str, str]], run_id: str
) -> None:
    client, keys = api
    plain, vip = f"{run_id}-PLAIN", f"{run_id}-VIP"

    added = await client.post(
        f"/orders/{plain}/tags", json={"add": ["vip"]}, headers=as_role(keys, "agent")
    )
    bulk = await client.post(
        "/tags/bulk",
        json={"order_nos": [plain], "remove": ["vip"]},
        headers=as_role(keys, "agent"),
    )
    by_filter = await client.post(
        "/tags/by-filter",
        json={"filter": {"customer_id": f"{run_id}-C2"}, "add": ["vip"]},
        headers=as_role(keys, "agent"),
    )
    service = await client.post(
        f"/orders/{plain}/tags", json={"add": ["urgent"]}, headers=as_role(keys, "agent")
    )
    by_manager = await client.post(
        f"/orders/{plain}/tags",
        json={"add": ["vip"], "reason": "big account"},
        headers=as_role(keys, "manager"),
    )
    detail = (await client.get(f"/orders/{plain}")).json()

    for refused in (added, bulk, by_filter):
        assert refused.status_code == 403, refused.text
        assert "tag 'vip': the role 'agent' may not" in refused.json()["detail"]
        assert "needs one of: manager, admin" in refused.json()["detail"]
    assert added.json()["errors"][0]["field"] == "add"
    assert bulk.json()["errors"][0]["field"] == "remove"
    assert service.json()["outcome"] == "changed"
    assert by_manager.json()["outcome"] == "changed"
    # the history says who did what
    by = [(entry["by"], [t["tag"] for t in entry["added"]]) for entry in detail["history"]]
    assert (f"agent-{run_id}", ["urgent"]) in by
    assert (f"manager-{run_id}", ["vip"]) in by
    assert (await client.get(f"/orders/{vip}")).json()["tag_names"].count("vip") == 1


async def test_a_tag_a_rule_gave_cannot_be_removed_by_hand_unless_the_catalog_allows_it(
    api: tuple[httpx.AsyncClient, dict[str, str]], run_id: str
) -> None:
    client, keys = api
    vip = f"{run_id}-VIP"
    tags = {t["name"]: t for t in (await client.get(f"/orders/{vip}")).json()["tags"]}
    assert tags["vip"]["source"] == "rule"

    refused = await client.post(
        f"/orders/{vip}/tags", json={"remove": ["vip"]}, headers=as_role(keys, "manager")
    )
    in_bulk = await client.post(
        "/tags/bulk", json={"order_nos": [vip], "remove": ["vip"]}, headers=as_role(keys, "admin")
    )
    managers = {"add": ["manager"], "remove": ["manager"], "remove_rule_given": True}
    allowed = await client.patch("/tags/vip", json={"permissions": managers})
    removed = await client.post(
        f"/orders/{vip}/tags", json={"remove": ["vip"]}, headers=as_role(keys, "manager")
    )

    assert refused.status_code == 403, refused.text
    assert "given by rule customer.vip" in refused.json()["detail"]
    assert in_bulk.json()["outcomes"][vip].startswith("forbidden: tag 'vip' was given by rule")
    assert allowed.json()["permissions"]["remove_rule_given"] is True
    assert removed.json()["outcome"] == "changed", removed.text
    assert "vip" not in (await client.get(f"/orders/{vip}")).json()["tag_names"]


async def test_a_console_session_is_refused_like_a_key_of_the_same_role(
    tagger_settings: TaggerSettings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    api: tuple[httpx.AsyncClient, dict[str, str]],
    run_id: str,
) -> None:
    users = UserStore(mongo_db)
    await users.ensure_indexes()
    await users.create(f"agent-{run_id}", Role.AGENT, PASSWORD)
    await users.create(f"manager-{run_id}", Role.MANAGER, PASSWORD)
    plain = f"{run_id}-PLAIN"
    async with api_client(create_app(tagger_settings), key=None) as console:
        csrf = await sign_in(console, f"agent-{run_id}")
        refused = await console.post(
            f"/orders/{plain}/tags", json={"add": ["vip"]}, headers={"X-CSRF-Token": csrf}
        )
        csrf = await sign_in(console, f"manager-{run_id}")  # a new session replaces the agent's
        added = await console.post(
            f"/orders/{plain}/tags", json={"add": ["vip"]}, headers={"X-CSRF-Token": csrf}
        )
        history = (await console.get(f"/orders/{plain}")).json()["history"]

    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == (
        "tag 'vip': the role 'agent' may not add it by hand; needs one of: manager, admin"
    )
    assert added.json()["outcome"] == "changed", added.text
    assert history[-1]["by"] == f"manager-{run_id}"


async def test_near_duplicate_tags_are_refused_naming_the_existing_one_unless_confirmed(
    api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, _ = api
    created = await client.post(
        "/tags", json={"name": "礼品", "labels": {"zh-CN": "礼品", "en": "Gift wrap"}}
    )
    twin = await client.post("/tags", json={"name": "礼品订单"})
    traditional = await client.post("/tags", json={"name": "x-tag", "labels": {"zh-CN": "VIP客戶"}})
    english = await client.post("/tags", json={"name": "gift_wrap"})
    renamed = await client.post("/tags/x/rename", json={"new_name": "gift.wrap"})
    confirmed = await client.post("/tags", json={"name": "礼品订单", "confirm_duplicate": True})
    review = (await client.get("/tags/duplicates")).json()

    assert created.status_code == 201, created.text
    assert twin.status_code == 409
    assert "'礼品订单' nearly equals the existing tag '礼品'" in twin.json()["detail"]
    assert "confirm_duplicate" in twin.json()["detail"]
    assert traditional.status_code == 409
    assert "the existing tag 'vip' (label zh-CN 'VIP客户')" in traditional.json()["detail"]
    assert english.status_code == 409
    assert "the existing tag '礼品' (label en 'Gift wrap')" in english.json()["detail"]
    assert renamed.status_code == 404  # no tag "x": the rename is looked at before the name
    assert confirmed.status_code == 201, confirmed.text
    assert ["礼品", "礼品订单"] in [pair["tags"] for pair in review]


async def test_a_tag_named_in_chinese_works_in_urls_filters_and_labels(
    api: tuple[httpx.AsyncClient, dict[str, str]], run_id: str
) -> None:
    client, keys = api
    name = "家居爱好者"
    plain = f"{run_id}-PLAIN"
    created = await client.post(
        "/tags",
        json={"name": name, "labels": {"en": "Home lover"}},
    )
    full_width = await client.post("/tags", json={"name": "ＧＩＦＴ"})
    tagged = await client.post(
        f"/orders/{plain}/tags", json={"add": [name]}, headers=as_role(keys, "agent")
    )
    found = await client.get("/orders", params={"all_tags": name})
    read = await client.get(f"/tags/{quote(name)}")
    relabelled = await client.patch(
        f"/tags/{quote(name)}", json={"labels": {"zh-CN": name, "en": "Home-goods fan"}}
    )

    assert created.status_code == 201, created.text
    assert created.json()["labels"] == {"en": "Home lover"}
    assert full_width.status_code == 422  # NFKC makes it "GIFT": upper case is not a name
    assert full_width.json()["errors"][0]["field"] == "name"
    assert tagged.json()["outcome"] == "changed"
    assert [o["order_no"] for o in found.json()["orders"]] == [plain]
    assert read.json()["name"] == name
    assert relabelled.json()["labels"] == {"zh-CN": name, "en": "Home-goods fan"}
    catalog = {t["name"]: t for t in (await client.get("/tags")).json()}
    assert catalog["vip"]["labels"] == {"zh-CN": "VIP客户", "en": "VIP"}
    assert catalog["vip"]["permissions"]["add"] == ["manager"]


async def test_customer_tags_by_hand_follow_the_catalogs_permissions_too(
    api: tuple[httpx.AsyncClient, dict[str, str]],
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    client, keys = api
    customer = f"{run_id}-C2"

    async def evaluated() -> bool:  # the customer is written once its order's batch is stored
        return await mongo_db["customers"].find_one({"_id": customer}) is not None

    assert await eventually(evaluated, within=30)

    by_agent = await client.post(
        f"/customers/{customer}/tags", json={"tag": "vip"}, headers=as_role(keys, "agent")
    )
    by_manager = await client.post(
        f"/customers/{customer}/tags", json={"tag": "vip"}, headers=as_role(keys, "manager")
    )
    removed_by_agent = await client.delete(
        f"/customers/{customer}/tags/vip", headers=as_role(keys, "agent")
    )

    assert by_agent.status_code == 403, by_agent.text
    assert "needs one of: manager, admin" in by_agent.json()["detail"]
    assert by_manager.status_code == 200, by_manager.text
    assert removed_by_agent.status_code == 403
    stored = await mongo_db["customers"].find_one({"_id": customer})
    assert stored is not None
    assert "vip" in stored["tag_names"]


async def test_a_rule_given_tag_named_from_a_fact_cannot_be_removed_by_hand(
    api: tuple[httpx.AsyncClient, dict[str, str]], run_id: str
) -> None:
    """``region:*``, ``category:*`` and ``status:*`` are not stored in the catalog; their
    family's permissions hold. The catalog lists them as not stored (the Tags page says the
    rules alone set them, and the pickers do not offer them): adding one by hand is refused as
    the rules' (``named_by_rules``)."""
    client, keys = api
    plain = f"{run_id}-PLAIN"
    names = (await client.get(f"/orders/{plain}")).json()["tag_names"]
    derived = [n for n in names if n.startswith(("region:", "category:", "status:"))]
    assert derived
    listed = {t["name"]: t for t in (await client.get("/tags", params={"usage": "false"})).json()}
    assert [listed[name]["in_catalog"] for name in derived] == [False] * len(derived)
    assert [listed[name]["named_by_rules"] for name in derived] == [True] * len(derived)
    assert (listed["urgent"]["in_catalog"], listed["urgent"]["named_by_rules"]) == (True, False)
    refused = await client.post(f"/orders/{plain}/tags", json={"add": [derived[0]]})
    assert refused.status_code == 422, refused.text
    assert "is one the rules name from the data" in refused.text

    answers = [
        await client.post(
            f"/orders/{plain}/tags", json={"remove": [name]}, headers=as_role(keys, "manager")
        )
        for name in derived
    ]

    assert [a.status_code for a in answers] == [403] * len(derived), [a.text for a in answers]
    assert (await client.get(f"/orders/{plain}")).json()["tag_names"] == names


async def test_an_orders_tag_is_judged_under_the_catalogs_family_not_the_one_it_carried(
    api: tuple[httpx.AsyncClient, dict[str, str]],
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
) -> None:
    """A manager tagged two orders ``loyal`` while it was a customer tag (managers only); the
    catalog then moved it to a family without permissions. The Tags page says any role may
    remove it now, and so does the API, for one order and in bulk, though the orders' tags
    still carry the old family."""
    client, keys = api
    plain, vip = f"{run_id}-PLAIN", f"{run_id}-VIP"
    created = await client.post("/tags", json={"name": "loyal", "family": "customer"})
    added = await client.post(
        "/tags/bulk",
        json={"order_nos": [plain, vip], "add": ["loyal"]},
        headers=as_role(keys, "manager"),
    )
    before_the_move = await client.post(
        f"/orders/{plain}/tags", json={"remove": ["loyal"]}, headers=as_role(keys, "agent")
    )
    await mongo_db["tag_catalog"].update_one({"name": "loyal"}, {"$set": {"family": "order-type"}})

    by_agent = await client.post(
        f"/orders/{plain}/tags", json={"remove": ["loyal"]}, headers=as_role(keys, "agent")
    )
    in_bulk = await client.post(
        "/tags/bulk", json={"order_nos": [vip], "remove": ["loyal"]}, headers=as_role(keys, "agent")
    )

    assert created.status_code == 201, created.text
    assert added.json()["outcomes"] == {plain: "changed", vip: "changed"}, added.text
    assert before_the_move.status_code == 403, before_the_move.text
    assert by_agent.json()["outcome"] == "changed", by_agent.text
    assert in_bulk.json()["outcomes"] == {vip: "changed"}, in_bulk.text


async def test_a_catalog_seeded_with_a_former_label_takes_todays_and_a_teams_label_stays(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    rules = load_rules(DEFAULT_RULES_FILE)
    store = OrderStore(mongo_db)
    await store.ensure_indexes()
    await mongo_db["tag_catalog"].insert_many(
        [  # as an earlier release seeded them, and as a team relabelled one
            {"name": "lifecycle:new", "labels": {"zh-CN": "新客", "en": "Lifecycle: new"}},
            {"name": "high-spender", "labels": {"zh-CN": "年度大主顾", "en": "High spender"}},
        ]
    )

    await store.seed_catalog(rules.tags)

    catalog = await store.catalog()
    assert catalog["lifecycle:new"].labels == {"zh-CN": "首单客户", "en": "First-order customer"}
    assert catalog["high-spender"].labels["zh-CN"] == "年度大主顾"
    assert catalog["lifecycle:returning"].labels["zh-CN"] == "复购客户"  # seeded today

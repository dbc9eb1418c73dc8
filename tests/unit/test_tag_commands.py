"""The Tag API's write use cases over in-memory adapters: milliseconds, no stack."""

import pytest

from services.tagger.commands import DryRun, JobStarted, TagCommands
from services.tagger.errors import Conflict, Gone, Invalid, NotFound
from services.tagger.manual import ManualChange, TagChangeRefused
from services.tagger.outcomes import EditOutcome, EditResult
from services.tagger.queries import OrderFilter
from services.tagger.rule_tags import given_to_orders
from services.tagger.rules.book import RuleBook
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from tests.factories import catalog_tag
from tests.tagger_fakes import FakeEditing, InMemoryCatalog, InMemoryOrders

VIP = ManualChange(("vip",), (), "ana", "customer called")
Parts = tuple[TagCommands, InMemoryCatalog, InMemoryOrders, FakeEditing]


@pytest.fixture
def parts() -> Parts:
    catalog = InMemoryCatalog([catalog_tag("vip"), catalog_tag("gift"), catalog_tag("urgent")])
    orders = InMemoryOrders({"SO-1": ["gift"], "SO-2": ["gift", "vip"], "SO-3": []})
    editing = FakeEditing(catalog, orders)
    rules = RuleBook(DEFAULT_RULES_FILE)
    return TagCommands(editing, catalog, orders, orders, rules), catalog, orders, editing


async def test_a_filter_change_is_a_dry_run_until_the_count_is_confirmed(parts: Parts) -> None:
    commands, _, orders, _ = parts
    gift = OrderFilter(all_tags=["gift"])

    dry = await commands.change_by_filter(gift, VIP, None, role="admin")
    with pytest.raises(Conflict, match="now matches 2 orders, not 3"):
        await commands.change_by_filter(gift, VIP, 3, role="admin")
    started = await commands.change_by_filter(gift, VIP, 2, role="admin")

    assert dry == DryRun(2)
    assert isinstance(started, JobStarted)
    assert [(j.job_id, j.kind, j.total) for j in orders.jobs] == [
        (started.job_id, "tag_by_filter", 2)
    ]


async def test_a_filter_change_with_an_unknown_tag_starts_nothing(parts: Parts) -> None:
    commands, _, orders, _ = parts
    with pytest.raises(TagChangeRefused):
        await commands.change_by_filter(
            OrderFilter(), ManualChange(("nope",), (), "ana"), 3, role="admin"
        )
    assert orders.jobs == []


async def test_outcomes_per_order_are_values_not_strings_to_parse(parts: Parts) -> None:
    commands, _, _, editing = parts
    editing.refuse["SO-3"] = "the order would carry 21 tags"

    results = await commands.change(["SO-1", "SO-2", "SO-3", "SO-404"], VIP, role="admin")

    assert {no: r.outcome for no, r in results.items()} == {
        "SO-1": EditOutcome.CHANGED,
        "SO-2": EditOutcome.UNCHANGED,
        "SO-3": EditOutcome.REFUSED,
        "SO-404": EditOutcome.NOT_FOUND,
    }
    assert results["SO-3"].reason == "the order would carry 21 tags"
    assert str(results["SO-3"]) == "refused: the order would carry 21 tags"


async def test_rename_moves_the_catalog_entry_at_once_and_the_old_name_is_gone(
    parts: Parts,
) -> None:
    commands, catalog, orders, _ = parts
    await catalog.update_catalog_tag("gift", {"description": "gift wrap"})

    started = await commands.rename_tag("gift", "gift-wrap", "ana")

    assert started.orders == 2
    assert "gift" not in catalog.tags
    assert catalog.tags["gift-wrap"].description == "gift wrap"
    assert orders.jobs[-1].change == ManualChange(
        ("gift-wrap",), ("gift",), "ana", "rename of tag gift into gift-wrap"
    )
    with pytest.raises(Gone, match="renamed to 'gift-wrap'"):
        await commands.merge_tag("gift", "vip", "ana")
    with pytest.raises(Gone):
        await commands.update_tag("gift", {"active": False})
    # while the job still moves orders off "gift", the name cannot be taken again
    with pytest.raises(Conflict, match="still moving"):
        await commands.create_tag(catalog_tag("gift"))
    orders.jobs[-1].status = "done"
    assert await commands.create_tag(catalog_tag("gift")) == catalog_tag("gift")


async def test_merge_and_rename_refusals(parts: Parts) -> None:
    commands, catalog, orders, _ = parts
    with pytest.raises(Conflict, match="into itself"):
        await commands.merge_tag("gift", "gift", "ana")
    with pytest.raises(Conflict, match="create it first"):
        await commands.merge_tag("gift", "missing", "ana")
    with pytest.raises(Conflict, match="rule file"):
        await commands.rename_tag("urgent", "rush", "ana")  # the default rules give "urgent"
    with pytest.raises(Conflict, match="exists: merge into it"):
        await commands.rename_tag("gift", "vip", "ana")
    with pytest.raises(NotFound):
        await commands.rename_tag("never-was", "x", "ana")
    assert orders.jobs == []
    assert set(catalog.tags) == {"vip", "gift", "urgent"}


async def test_a_rename_or_merge_into_a_tag_the_rules_name_is_refused_naming_the_field(
    parts: Parts,
) -> None:
    """The job would put the tag on orders by hand: refused as an order's change is, labelled
    (stored) or not."""
    commands, catalog, orders, _ = parts
    await commands.update_tag("status:pending", {"labels": {"zh-CN": "待处理"}})
    assert "status:pending" in catalog.tags

    with pytest.raises(Invalid, match=r"'status:pending' is one the rules name") as merged:
        await commands.merge_tag("gift", "status:pending", "ana")
    with pytest.raises(Invalid, match=r"prefix 'category:'") as renamed:
        await commands.rename_tag("gift", "category:x", "ana")

    assert (merged.value.field, renamed.value.field) == ("into", "new_name")
    assert orders.jobs == []
    assert {"gift", "status:pending"} <= set(catalog.tags)
    assert "category:x" not in catalog.tags


async def test_catalog_edits(parts: Parts) -> None:
    commands, _, _, _ = parts
    with pytest.raises(Conflict, match="exists"):
        await commands.create_tag(catalog_tag("vip"))
    with pytest.raises(Invalid) as nothing:
        await commands.update_tag("vip", {})
    assert nothing.value.field == "body"
    assert (await commands.update_tag("vip", {"colour": "#000000"})).colour == "#000000"
    with pytest.raises(NotFound):
        await commands.update_tag("never-was", {"active": False})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("changed", EditResult(EditOutcome.CHANGED)),
        ("not_found", EditResult(EditOutcome.NOT_FOUND)),
        ("refused: tag 'x': deactivated", EditResult(EditOutcome.REFUSED, "tag 'x': deactivated")),
        (EditResult(EditOutcome.UNCHANGED), EditResult(EditOutcome.UNCHANGED)),
    ],
)
def test_edit_results_read_the_old_strings_and_the_new_values(
    raw: str | EditResult, expected: EditResult
) -> None:
    assert EditResult.of(raw) == expected


async def test_the_listed_catalog_holds_every_tag_the_rules_can_set(parts: Parts) -> None:
    commands, _, _, _ = parts
    in_use = {"category:beauty", "prefers:beauty", "gift", "early-adopter", "product:sku-1"}

    listed = await commands.listed_catalog(in_use)

    # statuses and regions before any order carries them; data-named families as in use
    assert {"status:pending", "status:returned", "region:east-china", "region:taiwan"} <= set(
        listed
    )
    assert {"category:beauty", "prefers:beauty"} <= set(listed)
    assert not any(name.startswith("category:") and name != "category:beauty" for name in listed)
    assert listed["category:beauty"].family == "category"
    assert listed["category:beauty"].labels == {"zh-CN": "美妆", "en": "Beauty"}
    assert listed["prefers:beauty"].labels["zh-CN"] == "偏好：美妆"
    assert {"vip", "gift", "urgent"} <= set(listed)  # the stored ones stay
    # one tag per product sold would fill every tag picker: not listed
    assert not any(name.startswith("product:") for name in listed)


async def test_a_listed_rule_tag_can_be_named_and_is_then_stored(parts: Parts) -> None:
    commands, catalog, _, _ = parts

    named = await commands.update_tag("category:toys", {"labels": {"zh-CN": "儿童玩具"}})

    assert named.labels == {"zh-CN": "儿童玩具"}
    assert catalog.tags["category:toys"].family == "category"
    with pytest.raises(NotFound):  # a tag no rule can set is still not invented
        await commands.update_tag("toys", {"labels": {"zh-CN": "玩具"}})


async def test_tags_the_rules_name_from_facts_or_customer_rules_give_cannot_be_moved(
    parts: Parts,
) -> None:
    commands, _, orders, _ = parts
    await commands.update_tag("category:toys", {"active": True})
    await commands.create_tag(catalog_tag("early-adopter"), confirm_duplicate=True)

    for name in ("category:toys", "early-adopter"):
        with pytest.raises(Conflict, match="rule file"):
            await commands.rename_tag(name, "something-else", "ana")

    assert orders.jobs == []


def test_tags_only_customer_rules_give_are_marked_for_the_order_pickers(parts: Parts) -> None:
    commands, _, _, _ = parts

    for name in ("early-adopter", "prefers:beauty", "product:sku-1", "lifecycle:lapsed"):
        assert commands.on_customers(name), name
    for name in ("urgent", "returning-customer", "category:beauty", "vip", "gift"):
        assert not commands.on_customers(name), name


def test_tags_an_order_rule_or_a_family_default_gives_are_said_of_orders() -> None:
    """What the customer page offers to add by hand: no tag an order rule gives (it says
    something of one order, or of its customer as of that order)."""
    rules = load_rules(DEFAULT_RULES_FILE)
    for name in ("urgent", "regular", "vip", "new-order", "risk:velocity", "status:pending"):
        assert given_to_orders(name, rules), name
    for name in ("category:beauty", "region:east-china"):  # named from an order's facts
        assert given_to_orders(name, rules), name
    for name in ("early-adopter", "prefers:beauty", "lifecycle:lapsed", "product:sku-1", "gift"):
        assert not given_to_orders(name, rules), name

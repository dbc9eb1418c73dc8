"""Tag governance, pure: permissions per tag or family, rule-given tags, near-duplicate names."""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.tagger.commands import TagCommands
from services.tagger.errors import Conflict
from services.tagger.governance import (
    ChangeForbidden,
    check_change,
    family_of,
    removal_refusal,
    removal_refusals,
    role_of,
)
from services.tagger.http.models import CatalogTagIn, RenameIn
from services.tagger.manual import ManualChange, RemovalForbidden, apply_manual
from services.tagger.rules.book import RuleBook
from services.tagger.rules.engine import TagChange
from services.tagger.rules.schema import CatalogTag, Family, TagPermissions
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tag_names import comparable, likely_duplicates, near_duplicates
from shared.auth import ApiKey, Scope
from shared.events import AppliedTag, TagSource
from tests.factories import catalog_tag
from tests.tagger_fakes import FakeEditing, InMemoryCatalog, InMemoryOrders

MANAGERS = TagPermissions(add=("manager",), remove=("manager",))
FAMILIES = {
    "customer": Family(name="customer", permissions=MANAGERS),
    "service": Family(name="service"),
}
CATALOG = {
    "vip": catalog_tag("vip", family="customer", labels={"zh-CN": "VIP客户", "en": "VIP"}),
    "gift-wrap": catalog_tag("gift-wrap", family="service"),
    # its own permissions win over the family's: anyone who tags may add it, managers remove it
    "callback": catalog_tag(
        "callback",
        family="customer",
        permissions=TagPermissions(remove=("manager",), remove_rule_given=True),
    ),
}
AT = datetime(2026, 11, 25, tzinfo=UTC)


def key(scopes: set[Scope], role: str | None = None) -> ApiKey:
    return ApiKey(name="k", sha256="0" * 64, scopes=scopes, role=role)


# ── permissions ──────────────────────────────────────────────────────────────────────────


def test_a_callers_role_is_its_own_else_what_its_scopes_amount_to() -> None:
    assert role_of(key({Scope.READ, Scope.TAG}, role="manager")) == "manager"
    assert role_of(key({Scope.ADMIN})) == "admin"
    assert role_of(key({Scope.READ, Scope.TAG})) == "agent"
    assert role_of(key({Scope.READ})) == "viewer"


def test_only_managers_set_or_remove_a_tag_whose_family_keeps_it_for_them() -> None:
    with pytest.raises(ChangeForbidden) as refused:
        check_change(["vip"], [], "agent", CATALOG, FAMILIES)
    assert str(refused.value) == (
        "tag 'vip': the role 'agent' may not add it by hand; needs one of: manager, admin"
    )
    assert refused.value.field == "add"
    with pytest.raises(ChangeForbidden, match="'vip': the role 'agent' may not remove"):
        check_change([], ["vip"], "agent", CATALOG, FAMILIES)
    check_change(["vip"], ["vip"], "manager", CATALOG, FAMILIES)
    check_change(["vip"], ["vip"], "admin", CATALOG, FAMILIES)  # admins always may


def test_agents_may_add_service_tags_and_a_tags_own_permissions_beat_its_familys() -> None:
    check_change(["gift-wrap", "callback"], ["gift-wrap"], "agent", CATALOG, FAMILIES)
    with pytest.raises(ChangeForbidden, match=r"'callback'.*may not remove"):
        check_change([], ["callback"], "agent", CATALOG, FAMILIES)


def test_a_refusal_names_every_tag_the_role_may_not_change() -> None:
    with pytest.raises(ChangeForbidden) as refused:
        check_change(["vip"], ["callback"], "viewer", CATALOG, FAMILIES)
    assert "'vip'" in str(refused.value)
    assert "'callback'" in str(refused.value)


def rule_vip() -> AppliedTag:
    return AppliedTag(
        name="vip",
        family="customer",
        source=TagSource.RULE,
        rule_id="customer.vip",
        rule_version=1,
        reason="VIP flag → vip",
        at=AT,
    )


def test_a_tag_a_rule_gave_cannot_be_removed_by_hand_unless_the_catalog_allows_it() -> None:
    refused = removal_refusal(None, CATALOG, FAMILIES)
    rule_given = {name: rule_vip().model_copy(update={"name": name}) for name in CATALOG}
    assert {name for name, tag in rule_given.items() if refused(tag)} == {"vip", "gift-wrap"}
    change = ManualChange((), ("vip",), "mei")
    with pytest.raises(RemovalForbidden, match=r"'vip' was given by rule customer\.vip"):
        apply_manual(
            [rule_vip()],
            change,
            catalog=CATALOG,
            exclusive_families=set(),
            max_tags=20,
            at=AT,
            refuse_removal=refused,
        )
    # the same tag set by a person may be removed; so may a rule's "callback" (allowed)
    manual_vip = AppliedTag(
        name="vip", family="customer", source=TagSource.MANUAL, by="ana", reason="asked", at=AT
    )
    callback = rule_vip().model_copy(update={"name": "callback"})
    result = apply_manual(
        [manual_vip, callback],
        ManualChange((), ("vip", "callback"), "mei"),
        catalog=CATALOG,
        exclusive_families=set(),
        max_tags=20,
        at=AT,
        refuse_removal=refused,
    )
    assert result.tags == []


def test_the_default_rule_set_keeps_vip_for_managers_and_lets_agents_clear_urgent() -> None:
    rules = RuleBook(DEFAULT_RULES_FILE).current
    families = {family.name: family for family in rules.families}
    with pytest.raises(ChangeForbidden, match="needs one of: manager, admin"):
        check_change(["vip"], [], "agent", rules.catalog, families)
    check_change(["urgent"], ["urgent"], "agent", rules.catalog, families)
    refused = removal_refusal("agent", rules.catalog, families)
    assert refused(rule_vip())  # by the role, and as a rule's tag
    assert removal_refusal("manager", rules.catalog, families)(rule_vip())  # as a rule's tag
    assert refused(rule_vip().model_copy(update={"name": "urgent", "family": "priority"})) is None
    # "regular", the family's default, has its own permissions: a rule's is kept
    regular = rule_vip().model_copy(update={"name": "regular", "family": "priority"})
    assert refused(regular)
    check_change(["regular"], ["regular"], "agent", rules.catalog, families)  # a person's may go


@pytest.mark.parametrize(
    ("name", "family"),
    [("region:south-china", "region"), ("category:家居", "category"), ("status:pending", "status")],
)
def test_a_rule_given_tag_the_catalog_does_not_store_is_protected_as_its_family_says(
    name: str, family: str
) -> None:
    """Tags named from a rule's fact are not stored in the catalog; the Tags page lists them
    with their family's permissions, and removing one by hand is refused as it says."""
    rules = RuleBook(DEFAULT_RULES_FILE).current
    families = {family.name: family for family in rules.families}
    assert name not in rules.catalog
    given = AppliedTag(
        name=name, family=family, source=TagSource.RULE, rule_id=family, rule_version=1,
        reason="r", at=AT,
    )  # fmt: skip
    with pytest.raises(RemovalForbidden, match=f"'{name}' was given by rule {family}"):
        apply_manual(
            [given],
            ManualChange((), (name,), "mei"),
            catalog=rules.catalog,
            exclusive_families=set(),
            max_tags=20,
            at=AT,
            refuse_removal=removal_refusal("manager", rules.catalog, families),
        )


def test_a_tag_is_judged_under_the_catalogs_family_else_the_one_it_carries_else_its_names() -> None:
    assert family_of("vip", CATALOG, carried="service") == "customer"  # as the Tags page says
    assert family_of("vip", CATALOG) == "customer"
    assert family_of("south-china", CATALOG, carried="region") == "region"
    assert family_of("region:south-china", CATALOG) == "region"
    assert family_of("south-china", CATALOG) is None


REGION = Family(
    name="region", permissions=TagPermissions(remove=("manager",), remove_rule_given=True)
)


def remove_by_hand(
    tags: list[AppliedTag], change: ManualChange, refuse: Callable[[AppliedTag], str | None]
) -> TagChange:
    return apply_manual(
        tags,
        change,
        catalog=CATALOG,
        exclusive_families=set(),
        max_tags=20,
        at=AT,
        refuse_removal=refuse,
    )


def rule_south() -> AppliedTag:
    """A rule-given tag whose name names no family, carried with the rule's family."""
    return AppliedTag(
        name="south-china", family="region", source=TagSource.RULE, rule_id="region.by-province",
        rule_version=1, reason="shipped to 广东", at=AT,
    )  # fmt: skip


def test_a_tag_whose_name_names_no_family_is_judged_by_role_and_rule_under_the_one_it_carries() -> (
    None
):
    """Its family keeps removals for managers and lets them remove a rule's: an agent may not
    (its name alone would have let every role), a manager may, though a rule gave it."""
    families = {**FAMILIES, "region": REGION}
    change = ManualChange((), ("south-china",), "ana")
    found = removal_refusals([[rule_south()]], change.remove, "agent", CATALOG, families)
    assert [str(r) for r in found] == [
        "tag 'south-china': the role 'agent' may not remove it by hand; "
        "needs one of: manager, admin"
    ]
    with pytest.raises(RemovalForbidden, match="the role 'agent' may not remove"):
        remove_by_hand([rule_south()], change, removal_refusal("agent", CATALOG, families))
    assert removal_refusals([[rule_south()]], change.remove, "manager", CATALOG, families) == []
    removed = remove_by_hand([rule_south()], change, removal_refusal("manager", CATALOG, families))
    assert removed.tags == []


def test_a_tag_carrying_another_family_than_the_catalogs_is_judged_as_the_catalog_says() -> None:
    """``gift-wrap`` is a service tag now (any role may remove it, as the Tags page says); an
    order tagged when it was a customer tag, whose permissions keep it for managers, carries
    that family: the catalog's decides, for the role check and the rule check alike."""
    tagged_then = AppliedTag(
        name="gift-wrap", family="customer", source=TagSource.MANUAL, by="mei", reason="asked",
        at=AT,
    )  # fmt: skip
    assert removal_refusals([[tagged_then]], ["gift-wrap"], "agent", CATALOG, FAMILIES) == []
    assert removal_refusal("agent", CATALOG, FAMILIES)(tagged_then) is None
    vip_then = tagged_then.model_copy(update={"name": "vip", "family": "service"})
    refused = removal_refusals([[vip_then]], ["vip"], "agent", CATALOG, FAMILIES)
    assert [r.allowed for r in refused] == [("manager", "admin")]
    assert removal_refusal("agent", CATALOG, FAMILIES)(vip_then) == str(refused[0])


# ── names and near-duplicates ───────────────────────────────────────────────────────────

HOME = catalog_tag("家居爱好者", labels={"en": "Home-goods lover"})
NEAR = {
    "vip": CATALOG["vip"],
    "new-customer": catalog_tag("new-customer", labels={"zh-CN": "新客户", "en": "New customer"}),
    "new-order": catalog_tag("new-order", labels={"zh-CN": "新订单"}),
    "家居爱好者": HOME,
}


@pytest.mark.parametrize(
    ("given", "existing"),
    [
        ("VIP", "vip"),  # case
        ("ｖｉｐ", "vip"),  # full width (全角)
        ("V I P", "vip"),  # spacing
        ("vip客户", "vip"),  # a trailing 客户
        ("VIP客戶", "vip"),  # traditional characters, against its zh-CN label
        ("VIP 订单", "vip"),  # a trailing 订单, after a space
        ("New Customer", "new-customer"),  # spacing and separators, case
        ("new_customer", "new-customer"),
        ("NEW-CUSTOMER", "new-customer"),
        ("新客戶", "new-customer"),  # traditional 戶
        ("新客户订单", "new-customer"),  # its zh-CN label plus a trailing 订单
        ("家居愛好者", "家居爱好者"),  # traditional 愛
        ("家居爱好者客户", "家居爱好者"),
        ("家居 爱好者", "家居爱好者"),
        ("home goods lover", "家居爱好者"),  # against its English label
        ("ＨＯＭＥ－ＧＯＯＤＳ　ＬＯＶＥＲ", "家居爱好者"),  # full-width letters, dash and space
    ],
)
def test_near_duplicates_in_chinese_and_english(given: str, existing: str) -> None:
    found = near_duplicates([given], NEAR)
    assert [d.tag for d in found] == [existing]
    assert repr(given) in str(found[0])
    assert f"the existing tag {existing!r}" in str(found[0])


@pytest.mark.parametrize(
    "given", ["gift-wrap", "vvip", "新客", "客户", "订单", "new", "home-goods", "家居"]
)
def test_different_tags_are_not_near_duplicates(given: str) -> None:
    assert near_duplicates([given], NEAR) == []


def test_the_trailing_word_is_dropped_on_one_side_only() -> None:
    # 新客户 and 新订单 differ by their trailing word: two tags, not one
    assert likely_duplicates(NEAR) == []
    assert comparable("ＶＩＰ 客戶") == "vip客户"


def test_the_review_pairs_tags_that_nearly_equal_each_other() -> None:
    catalog = {**NEAR, "vip-customer": catalog_tag("vip-customer", labels={"zh-CN": "VIP客戶"})}
    pairs = likely_duplicates(catalog)
    assert [p.tags for p in pairs] == [("vip", "vip-customer")]
    assert "VIP客" in pairs[0].why


def test_the_default_catalog_has_no_likely_duplicates() -> None:
    from services.tagger.builtin_labels import with_builtin_labels

    tags = with_builtin_labels(RuleBook(DEFAULT_RULES_FILE).current.tags)
    assert tags[0].labels == {"zh-CN": "紧急", "en": "Urgent"}
    assert likely_duplicates({t.name: t for t in tags}) == []


def test_tag_names_may_be_chinese_and_are_nfkc_normalised_at_the_boundary() -> None:
    assert CatalogTagIn.model_validate({"name": "家居爱好者"}).name == "家居爱好者"
    assert RenameIn.model_validate({"new_name": "ｇｉｆｔ－ｗｒａｐ"}).new_name == "gift-wrap"
    for bad in ["Gift", "gift wrap", "vіp", "a\u200bb", "家居\n", "😀", "ギフト", "x" * 65]:
        with pytest.raises(ValidationError):
            CatalogTagIn.model_validate({"name": bad})


def test_labels_are_one_line_of_printable_text_per_known_language() -> None:
    assert CatalogTag(name="gift", labels={"zh-CN": "礼品", "en": "Gift"}).labels["en"] == "Gift"
    for labels in [{"fr": "Cadeau"}, {"en": ""}, {"en": "a\nb"}, {"en": " gift"}]:
        with pytest.raises(ValidationError):
            CatalogTag.model_validate({"name": "gift", "labels": labels})


# ── the use cases ───────────────────────────────────────────────────────────────────────


@pytest.fixture
def commands() -> tuple[TagCommands, InMemoryCatalog]:
    catalog = InMemoryCatalog(list(NEAR.values()))
    orders = InMemoryOrders({"SO-1": []})
    rules = RuleBook(DEFAULT_RULES_FILE)
    return TagCommands(FakeEditing(catalog, orders), catalog, orders, orders, rules), catalog


async def test_creating_a_near_duplicate_is_refused_naming_the_existing_tag_unless_confirmed(
    commands: tuple[TagCommands, InMemoryCatalog],
) -> None:
    use_cases, catalog = commands
    with pytest.raises(Conflict, match=r"nearly equals the existing tag 'vip'.*confirm_duplicate"):
        await use_cases.create_tag(catalog_tag("vip客户"))
    with pytest.raises(Conflict, match="'家居爱好者'"):
        await use_cases.create_tag(catalog_tag("home", labels={"zh-CN": "家居愛好者"}))
    assert "vip客户" not in catalog.tags

    await use_cases.create_tag(catalog_tag("vip客户"), confirm_duplicate=True)
    assert "vip客户" in catalog.tags


async def test_renaming_or_relabelling_into_a_near_duplicate_is_refused_unless_confirmed(
    commands: tuple[TagCommands, InMemoryCatalog],
) -> None:
    use_cases, catalog = commands
    await use_cases.create_tag(catalog_tag("gift"))
    with pytest.raises(Conflict, match="'new-customer'"):
        await use_cases.rename_tag("gift", "new_customer", "ana")
    with pytest.raises(Conflict, match="'vip'"):
        await use_cases.update_tag("gift", {"labels": {"zh-CN": "VIP客戶"}})
    # a tag's own spellings are not duplicates of itself
    await use_cases.update_tag("vip", {"labels": {"zh-CN": "VIP客戶", "en": "VIP"}})
    assert catalog.tags["vip"].labels["zh-CN"] == "VIP客戶"
    await use_cases.update_tag("gift", {"labels": {"en": "VIP"}}, confirm_duplicate=True)


async def test_a_manual_change_the_role_may_not_make_is_refused_before_anything_changes(
    commands: tuple[TagCommands, InMemoryCatalog],
) -> None:
    use_cases, catalog = commands
    catalog.tags["vip"] = catalog.tags["vip"].model_copy(update={"family": "customer"})
    with pytest.raises(ChangeForbidden, match=r"'vip'.*needs one of: manager, admin"):
        await use_cases.change(["SO-1"], ManualChange(("vip",), (), "ana"), role="agent")
    from services.tagger.queries import OrderFilter

    with pytest.raises(ChangeForbidden):
        await use_cases.change_by_filter(
            OrderFilter(), ManualChange(("vip",), (), "ana"), 1, role="agent"
        )
    results = await use_cases.change(["SO-1"], ManualChange(("vip",), (), "mei"), role="manager")
    assert str(results["SO-1"]) == "changed"

"""Free tags (ORDERTAG_TAGGER_ALLOW_FREE_TAGS): which names a person may add by hand outside the
catalog, on orders and on customers."""

from typing import Any

import pytest
from pydantic import ValidationError

from services.tagger.commands import TagCommands
from services.tagger.errors import Invalid
from services.tagger.governance import ChangeForbidden
from services.tagger.http.customers import CustomerTagIn
from services.tagger.http.models import TagChangeIn
from services.tagger.manual import TagChangeRefused, check_tags, named_by_rules
from services.tagger.rule_tags import fact_prefixes
from services.tagger.rules.book import RuleBook
from services.tagger.settings import DEFAULT_RULES_FILE
from tests.factories import catalog_tag
from tests.tagger_fakes import FakeEditing, InMemoryCatalog, InMemoryOrders

CATALOG = {"vip": catalog_tag("vip"), "old": catalog_tag("old", active=False)}
PREFIXES = ("category:", "prefers:", "status:")


def test_the_rules_name_tags_from_the_data_under_their_prefixes() -> None:
    rules = RuleBook(DEFAULT_RULES_FILE).current
    assert fact_prefixes(rules) == ["category:", "prefers:", "product:", "region:", "status:"]


def test_without_free_tags_only_the_catalogs_active_tags_may_be_added() -> None:
    check_tags(("vip",), CATALOG, False, PREFIXES)
    with pytest.raises(TagChangeRefused, match="'call-back' is not in the catalog"):
        check_tags(("call-back",), CATALOG, False, PREFIXES)
    # a tag only the rules name is refused as theirs, the clearer reason
    with pytest.raises(TagChangeRefused, match=r"'status:pending' is one the rules name"):
        check_tags(("status:pending",), CATALOG, False, PREFIXES)
    with pytest.raises(TagChangeRefused, match="'old' is deactivated"):
        check_tags(("old",), CATALOG, False, PREFIXES)


def test_a_free_tag_is_any_name_outside_the_prefixes_the_rules_name_tags_under() -> None:
    check_tags(("call-back", "回访", "risk:manual-review"), CATALOG, True, PREFIXES)
    with pytest.raises(
        TagChangeRefused, match=r"'prefers:beauty' is one the rules name .*'prefers:'"
    ):
        check_tags(("prefers:beauty",), CATALOG, True, PREFIXES)
    with pytest.raises(TagChangeRefused, match="'old' is deactivated"):
        check_tags(("old",), CATALOG, True, PREFIXES)


def test_a_tag_the_rules_name_stays_theirs_once_the_catalog_stores_it() -> None:
    """Labelling status:pending on the Tags page stores it (``commands._add_rule_tag``): a
    cosmetic act, which must not let people set it by hand, free tags or not."""
    stored = {**CATALOG, "status:pending": catalog_tag("status:pending")}
    for allow_free_tags in (False, True):
        with pytest.raises(TagChangeRefused, match=r"'status:pending' is one the rules name"):
            check_tags(("vip", "status:pending"), stored, allow_free_tags, PREFIXES)
    assert named_by_rules("status:pending", PREFIXES) == "status:"
    assert named_by_rules("prefers:数码", PREFIXES) == "prefers:"
    assert named_by_rules("vip", PREFIXES) is None
    assert named_by_rules("statuses", PREFIXES) is None  # the prefix ends at its colon


class CheckingEditing(FakeEditing):
    """The fake with the real ``check_tags`` (free tags as given)."""

    def __init__(self, catalog: InMemoryCatalog, allow_free_tags: bool) -> None:
        super().__init__(catalog, InMemoryOrders({}))
        self._tags = catalog
        self._allow = allow_free_tags

    async def check(self, change: Any) -> None:
        check_tags(change.add, self._tags.tags, self._allow, PREFIXES)


def commands(allow_free_tags: bool, rules: RuleBook | None = None) -> TagCommands:
    catalog = InMemoryCatalog(
        [
            catalog_tag("vip", family="customer"),
            catalog_tag("生日关怀"),
            catalog_tag("prefers:数码", family="prefers"),  # labelled on the Tags page
        ]
    )
    orders = InMemoryOrders({})
    editing = CheckingEditing(catalog, allow_free_tags)
    return TagCommands(editing, catalog, orders, orders, rules or RuleBook(DEFAULT_RULES_FILE))


async def test_a_customer_tag_the_rules_name_from_the_data_is_refused_naming_the_field() -> None:
    strict, free = commands(False), commands(True)
    await strict.check_customer_tag("生日关怀", "agent")
    for use_cases in (strict, free):
        for name in ("prefers:beauty", "prefers:数码"):  # stored (labelled) or not
            with pytest.raises(Invalid) as refused:
                await use_cases.check_customer_tag(name, "admin")
            assert refused.value.field == "tag"
            assert name in refused.value.detail
            assert use_cases.named_by_rules(name)
    assert not strict.named_by_rules("生日关怀")
    with pytest.raises(Invalid, match="not in the catalog"):
        await strict.check_customer_tag("call-back", "agent")
    await free.check_customer_tag("call-back", "agent")
    # the catalog's permissions hold as on orders: the customer family is the managers'
    with pytest.raises(ChangeForbidden, match="'vip'"):
        await strict.check_customer_tag("vip", "agent")


def test_a_customer_tag_is_read_as_an_orders_nfkc_first() -> None:
    assert CustomerTagIn(tag="回访-ｃａｌｌ").tag == "回访-call"
    assert TagChangeIn(add=["回访-ｃａｌｌ"]).add == ["回访-call"]
    with pytest.raises(ValidationError):
        CustomerTagIn(tag="Not A Tag")


async def test_with_free_tags_the_listing_holds_the_free_tags_orders_carry() -> None:
    """So the orders list's filter and the batch bar's removal can pick one (GET /tags)."""
    in_use = {"回访-call", "status:pending", "product:sku-1", "生日关怀", "vip-only-on-customers"}
    on_orders = in_use - {"vip-only-on-customers"}
    listing, stored = await commands(True).catalog_listing(in_use, free_from=on_orders)
    assert "回访-call" in listing
    assert "回访-call" not in stored
    assert "product:sku-1" not in listing  # the rules name it; one per product is never listed
    # every picker is over orders: a free tag only customers carry would find or set nothing
    assert "vip-only-on-customers" not in listing
    assert list(listing) == sorted(listing)
    plain, _ = await commands(True).catalog_listing(in_use)
    assert "回访-call" not in plain


async def test_a_tag_the_rules_give_is_not_listed_as_free_before_the_catalog_stores_it() -> None:
    """A rule version activated at runtime gives a fixed tag the catalog stores only once
    seeded again: listed as a free tag, it would be offered for removal as a person's."""
    on_orders = {"urgent", "early-adopter", "回访-call"}  # the default rules give the first two
    listing, stored = await commands(True).catalog_listing(on_orders, free_from=on_orders)
    assert not {"urgent", "early-adopter"} & (set(listing) | stored)
    assert "回访-call" in listing


async def test_a_name_in_use_the_catalog_could_not_hold_is_not_listed() -> None:
    """A rule named it from the data (``category:café``) under a prefix no active rule uses:
    a CatalogTag of it would fail validation and GET /tags answer 500 on every page."""
    book = RuleBook(DEFAULT_RULES_FILE)
    book.current = book.current.model_copy(
        update={"rules": [r for r in book.current.rules if r.tag_prefix != "category:"]}
    )
    use_cases = commands(True, book)
    assert "category:" not in use_cases.fact_prefixes()

    listing, _ = await use_cases.catalog_listing(
        {"category:café", "回访-call"}, free_from={"category:café", "回访-call"}
    )

    assert "category:café" not in listing
    assert "回访-call" in listing

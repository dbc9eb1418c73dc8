"""What the console's pages are told of free tags (``pages._free_tags``, in BOOT): whether a
person may add a tag outside the catalog, and which names the Tag API would refuse."""

from types import SimpleNamespace
from typing import Any

from services.console.pages import _free_tags, _rule_prefixes
from services.console.sessions import Session
from services.console.users import Role
from services.tagger.rules.book import RuleBook
from services.tagger.rules.schema import TAG_NAME, Family, TagPermissions
from services.tagger.settings import DEFAULT_RULES_FILE


def console_request(allow_free_tags: bool) -> Any:
    """A request as the console's pages see it: the tagger's settings, rules and families."""
    book = RuleBook(DEFAULT_RULES_FILE)
    families = {
        "customer": Family(
            name="customer", permissions=TagPermissions(add=("manager",), remove=("manager",))
        ),
        "service": Family(name="service"),
    }
    tagger = SimpleNamespace(
        settings=SimpleNamespace(tagger_allow_free_tags=allow_free_tags),
        rules=book,
        commands=SimpleNamespace(families=families),
    )
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(tagger=tagger)))


def session(role: Role) -> Session:
    return Session("s-1", "ana", role, "x")


def test_the_console_learns_free_tags_where_they_are_allowed_and_what_the_role_may_add() -> None:
    assert _free_tags(console_request(False), session(Role.ADMIN)) is None
    # only to those who may tag: a viewer (or a page without a session) is offered nothing
    assert _free_tags(console_request(True), session(Role.VIEWER)) is None
    assert _free_tags(console_request(True), None) is None

    agent = _free_tags(console_request(True), session(Role.AGENT))
    manager = _free_tags(console_request(True), session(Role.MANAGER))

    assert agent == {"pattern": TAG_NAME, "closedFamilies": {"customer": ["manager", "admin"]}}
    assert manager is not None
    assert manager["closedFamilies"] == {}


def test_the_rules_prefixes_go_to_whoever_may_tag_free_tags_or_not() -> None:
    """The batch bar checks a typed name against them before it makes a catalog tag."""
    prefixes = ["category:", "prefers:", "product:", "region:", "status:"]
    for allowed in (False, True):
        for role in (Role.AGENT, Role.ADMIN):
            assert _rule_prefixes(console_request(allowed), session(role)) == prefixes
        assert _rule_prefixes(console_request(allowed), session(Role.VIEWER)) is None
        assert _rule_prefixes(console_request(allowed), None) is None

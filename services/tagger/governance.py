"""Tag permissions: which staff roles may add or remove a catalog tag by hand.

Pure: given the catalog, the families and a manual change, allowed or a refusal that names the
tag and the roles that may. A tag's permissions are its own, else its family's, else the
defaults of ``TagPermissions`` (every role that may tag). Admins may always: they edit the
catalog anyway. A tag is judged under one family (``family_of``): the catalog's, else the one
it carries where an order's tag is at hand, else its name's. Removals are decided per order,
where the tag's family and source are known (``manual.apply_manual`` with ``removal_refusal``).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from services.tagger.errors import TaggerError
from services.tagger.rules.schema import ROLES, CatalogTag, Family, TagPermissions
from shared import errors
from shared.auth import ApiKey, Scope
from shared.events import AppliedTag, TagSource
from shared.stored_tags import family_in_name

DEFAULT_PERMISSIONS = TagPermissions()
ALWAYS_ALLOWED = "admin"


class ChangeForbidden(TaggerError, errors.Forbidden):
    """The caller may not make this change by hand (403); ``field`` is ``add`` or ``remove``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


@dataclass(frozen=True, slots=True)
class Refusal:
    tag: str
    action: str  # "add" or "remove"
    role: str
    allowed: tuple[str, ...]

    def __str__(self) -> str:
        who = ", ".join(self.allowed)
        return (
            f"tag {self.tag!r}: the role {self.role!r} may not {self.action} it by hand; "
            f"needs one of: {who}"
        )


def role_of(key: ApiKey) -> str:
    """The staff role a caller acts as: a person's own role (their session says it), else a
    key's configured ``role``, else the highest its scopes amount to."""
    if key.role is not None:
        return key.role
    if Scope.ADMIN in key.scopes:
        return "admin"
    if Scope.TAG in key.scopes:
        return "agent"
    return "viewer"


def family_of(
    name: str, catalog: Mapping[str, CatalogTag], carried: str | None = None
) -> str | None:
    """The one family a tag's permissions are judged under: the catalog's (what the Tags page
    shows, as admins set it now), else the one the tag carries where it is at hand (an order's
    tag a rule named from a fact: ``south-china`` of the family ``region``), else the one its
    name names (``region`` for ``region:south-china``). Both the role check and the
    rule-given check use it, so one tag on one order is never judged under two families."""
    entry = catalog.get(name)
    if entry is not None and entry.family is not None:
        return entry.family
    if carried is not None:
        return carried
    return family_in_name(name)


def permissions_of(
    name: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
    carried: str | None = None,
) -> TagPermissions:
    """The tag's own permissions, else its family's (``family_of``), else the defaults; the
    Tags page lists a tag so."""
    entry = catalog.get(name)
    if entry is not None and entry.permissions is not None:
        return entry.permissions
    family_name = family_of(name, catalog, carried)
    found = families.get(family_name) if family_name else None
    if found is not None and found.permissions is not None:
        return found.permissions
    return DEFAULT_PERMISSIONS


def refusal(
    name: str,
    action: str,
    role: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
    carried: str | None = None,
) -> Refusal | None:
    """Why ``role`` may not ``add`` or ``remove`` the tag by hand, None when it may."""
    if role == ALWAYS_ALLOWED:
        return None
    permissions = permissions_of(name, catalog, families, carried)
    allowed = permissions.add if action == "add" else permissions.remove
    if role in allowed:
        return None
    return Refusal(
        name, action, role, tuple(r for r in ROLES if r in allowed or r == ALWAYS_ALLOWED)
    )


def refusals(
    add: Iterable[str],
    remove: Iterable[str],
    role: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
) -> list[Refusal]:
    """Every tag of the change the role may not add or remove, in the order given, where the
    tags are not at hand: an added tag carries the catalog's family (else none: its name's),
    a removed one is judged as the catalog says (a change by filter, asked before its orders
    are read; each order's tag is judged again as it carries it: ``removal_refusal``)."""
    found = [refusal(name, "add", role, catalog, families) for name in dict.fromkeys(add)]
    found += [refusal(name, "remove", role, catalog, families) for name in dict.fromkeys(remove)]
    return [r for r in found if r is not None]


def removal_refusals(
    orders_tags: Iterable[Iterable[AppliedTag]],
    remove: Iterable[str],
    role: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
) -> list[Refusal]:
    """Every tag of ``remove`` the role may not remove from the named orders, each judged under
    the family it carries there (as ``catalog`` says where none of them carries it), in the
    order given: a change of named orders is refused as a whole before any order changes."""
    # the families each tag carries on these orders (a dict: in the order met); none: None
    carried: dict[str, dict[str | None, None]] = {name: {} for name in dict.fromkeys(remove)}
    for tags in orders_tags:
        for tag in tags:
            if tag.name in carried:
                carried[tag.name][tag.family] = None
    found: list[Refusal] = []
    for name, under in carried.items():
        judged = (refusal(name, "remove", role, catalog, families, f) for f in under or [None])
        refused = next((r for r in judged if r is not None), None)
        if refused is not None:
            found.append(refused)
    return found


def forbidden(found: list[Refusal]) -> ChangeForbidden:
    """The 403 naming every tag the role may not change and who may."""
    return ChangeForbidden(found[0].action, "; ".join(str(r) for r in found))


def check_change(
    add: Iterable[str],
    remove: Iterable[str],
    role: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
) -> None:
    """Raise ``ChangeForbidden`` naming every tag the role may not change and who may."""
    found = refusals(add, remove, role, catalog, families)
    if found:
        raise forbidden(found)


def removal_refusal(
    role: str | None, catalog: Mapping[str, CatalogTag], families: Mapping[str, Family]
) -> Callable[[AppliedTag], str | None]:
    """Why an order's tag may not be removed by hand (None when it may), judged under the
    family the tag carries: ``role`` may not remove it (no role: a change the system makes for
    an admin, a rename or merge), or a rule gave it and its permissions keep it
    (``remove_rule_given``: false by default, tags the catalog does not store included)."""

    def refused(tag: AppliedTag) -> str | None:
        if role is not None:
            by_role = refusal(tag.name, "remove", role, catalog, families, tag.family)
            if by_role is not None:
                return str(by_role)
        permissions = permissions_of(tag.name, catalog, families, tag.family)
        if tag.source is TagSource.RULE and not permissions.remove_rule_given:
            return (
                f"tag {tag.name!r} was given by rule {tag.rule_id} and the catalog does not "
                "let it be removed by hand (permissions.remove_rule_given): change the rule "
                "or the catalog"
            )
        return None

    return refused

"""Tag permissions: which staff roles may add or remove a catalog tag by hand.

Pure: given the catalog, the families and a manual change, allowed or a refusal that names the
tag and the roles that may. A tag's permissions are its own, else its family's, else the
defaults of ``TagPermissions`` (every role that may tag). Admins may always: they edit the
catalog anyway. Whether a tag a rule gave may be removed by hand is decided per order, where the
tag's source is known (``manual.apply_manual`` with ``rule_given_protected``).
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


def permissions_of(
    tag: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
    family: str | None = None,
) -> TagPermissions:
    """The tag's own permissions, else its family's, else the defaults. A tag the catalog
    does not store (one named from a rule's fact: ``region:south-china``, ``category:家居``)
    has its family's: the one it carries (``family``), else the one its name names; the Tags
    page lists it so."""
    entry = catalog.get(tag)
    if entry is not None and entry.permissions is not None:
        return entry.permissions
    family_name = entry.family if entry is not None else family or family_in_name(tag)
    found = families.get(family_name) if family_name else None
    if found is not None and found.permissions is not None:
        return found.permissions
    return DEFAULT_PERMISSIONS


def refusals(
    add: Iterable[str],
    remove: Iterable[str],
    role: str,
    catalog: Mapping[str, CatalogTag],
    families: Mapping[str, Family],
) -> list[Refusal]:
    """Every tag of the change the role may not add or remove, in the order given."""
    if role == ALWAYS_ALLOWED:
        return []
    found: list[Refusal] = []
    for action, names in (("add", add), ("remove", remove)):
        for name in dict.fromkeys(names):
            permissions = permissions_of(name, catalog, families)
            allowed = permissions.add if action == "add" else permissions.remove
            if role not in allowed:
                ordered = tuple(r for r in ROLES if r in allowed or r == ALWAYS_ALLOWED)
                found.append(Refusal(name, action, role, ordered))
    return found


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
        raise ChangeForbidden(found[0].action, "; ".join(str(r) for r in found))


def rule_given_protected(
    catalog: Mapping[str, CatalogTag], families: Mapping[str, Family]
) -> Callable[[AppliedTag], bool]:
    """Whether nobody may remove a tag by hand when a rule gave it: its permissions say so
    (``remove_rule_given``: false by default), tags the catalog does not store included."""

    def protected(tag: AppliedTag) -> bool:
        permissions = permissions_of(tag.name, catalog, families, tag.family)
        return tag.source is TagSource.RULE and not permissions.remove_rule_given

    return protected

"""Tag permissions: which staff roles may add or remove a catalog tag by hand.

Pure: given the catalog, the families and a manual change, allowed or a refusal that names the
tag and the roles that may. A tag's permissions are its own, else its family's, else the
defaults of ``TagPermissions`` (every role that may tag). Admins may always: they edit the
catalog anyway. Whether a tag a rule gave may be removed by hand is decided per order, where the
tag's source is known (``manual.apply_manual`` with ``protected_rule_tags``).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.tagger.errors import TaggerError
from services.tagger.rules.schema import ROLES, CatalogTag, Family, TagPermissions
from shared import errors
from shared.auth import ApiKey, Scope

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
    tag: str, catalog: Mapping[str, CatalogTag], families: Mapping[str, Family]
) -> TagPermissions:
    entry = catalog.get(tag)
    if entry is None:
        return DEFAULT_PERMISSIONS  # a free tag (allowed only when the settings say so)
    if entry.permissions is not None:
        return entry.permissions
    family = families.get(entry.family) if entry.family else None
    if family is not None and family.permissions is not None:
        return family.permissions
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


def protected_rule_tags(
    catalog: Mapping[str, CatalogTag], families: Mapping[str, Family]
) -> frozenset[str]:
    """Catalog tags whose rule-given instances nobody may remove by hand."""
    return frozenset(
        name for name in catalog if not permissions_of(name, catalog, families).remove_rule_given
    )

"""How a customer's tags and tag history are stored in MongoDB, and read back in full.

Stored compact (issue #14: bytes written per order), as an order's tags are
(``shared.stored_tags``): a tag or history entry keeps only the fields it has (no ``by`` for a
rule's, no ``family`` where the catalog gives none), ``source`` only when not a rule's, a rule
tag's reason as ``args`` (the values its template's placeholders took, ``"3"`` for
``"{orders_total} orders → returning"``: ``shared.stored_tags.stored_args``), rendered again on
reading, and a tag's ``at`` as a BSON date, not an ISO string. A customer's tag reasons follow
its figures, so an order rewrites the values (``tags.2.args``), not the sentence; the templates
are those of every rule set once in force (``RuleBook.customer_templates``). History entries
are stored the same way (since the release of 2026-11-27 evening; entries written before keep
the sentence, and read as they are): a rule id and version pin a reason's words, because a
rule set that gives a recorded rule version other words is refused (``keep_words``), and every
rule set once in force is kept (``rule_versions``). A rule version whose set no longer parses
(a later schema) reads as the rule, its version and the values.

Documents written before (every field, the reason as a sentence, ``at`` as a string) read the
same way; a customer is rewritten in the compact form the next time it changes.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python

from shared import stored_tags
from shared.events import AppliedTag, TagSource
from shared.money import cents_text
from shared.stored_tags import (
    FIRST_RULE_VERSION,
    ReasonTemplates,
    reason_of,
    reason_values,
    stored_args,
    stored_tag,
    whole_rule,
)

Templates = Callable[[], ReasonTemplates] | None  # the customer rules' templates now


def templates_now(templates: Templates) -> ReasonTemplates | None:
    return templates() if templates else None


_RULE = TagSource.RULE.value
_ADDED = "added"
# a customer's stored tags validated in one call, not one per tag
_APPLIED_TAGS = TypeAdapter(list[AppliedTag]).validate_python


def stored_customer_tag(tag: AppliedTag, templates: ReasonTemplates | None) -> dict[str, Any]:
    """A customer's tag as stored: its name, what it has of the rest, and since when."""
    return {**stored_tag(tag, templates, name_key="name"), "at": tag.at}


def is_compact(stored: dict[str, Any]) -> bool:
    """Whether a stored tag is in the compact form (an earlier one holds its time as a string)."""
    return isinstance(stored.get("at"), datetime)


def stored_entry(row: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A history row (``model.history_entries``) as stored: the fields it has, a rule's reason
    as its template's values when the template renders it back exactly (else the sentence: a
    person's reason, or one of a rule version the templates do not hold). An entry is written
    only when a tag comes or goes, not on every order. An addition stores no ``change``
    (``change_of``)."""
    stored = {"at": row["at"], "tag": row["tag"]}
    if row["change"] != _ADDED:
        stored["change"] = row["change"]
    if row["source"] != _RULE:
        stored["source"] = row["source"]
    for key in ("rule_id", "rule_version", "by"):
        if row.get(key) is not None:
            stored[key] = row[key]
    if (
        stored_tags.WRITE_WHOLE_RULE_SHORT
        and row["source"] == _RULE
        and stored.get("rule_version") == FIRST_RULE_VERSION
    ):
        del stored["rule_version"]  # the first (``whole_rule``)
    args = reason_values(
        row["source"], row.get("rule_id"), row.get("rule_version"), row["reason"], templates
    )
    if args is None:
        stored["reason"] = row["reason"]
    elif args:
        stored["args"] = stored_args(args)
    return stored


def change_of(entry: dict[str, Any]) -> str:
    """A stored history entry's change, ``added`` or ``removed``: an addition is written
    without one (~18 bytes an addition; entries written before hold ``added``). The release
    before this writer read both forms, so a rollback to it reads what this one wrote."""
    return str(entry.get("change", _ADDED))


def _full(stored: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    rule = whole_rule(stored)  # either form (``shared.stored_tags.WRITE_WHOLE_RULE_SHORT``)
    return {
        "family": rule["family"],
        "source": stored.get("source", _RULE),
        "rule_id": rule["rule_id"],
        "rule_version": rule["rule_version"],
        "by": stored.get("by"),
        "reason": reason_of(stored, templates),
    }


def applied_tags(
    stored: list[dict[str, Any]], templates: ReasonTemplates | None
) -> list[AppliedTag]:
    """A customer's stored tags (either form) as ``AppliedTag``s."""
    return _APPLIED_TAGS(
        [{"name": s["name"], **_full(s, templates), "at": s["at"]} for s in stored]
    )


def readable_tag(stored: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A stored tag as the API and pages show it: every field, the reason rendered, its time as
    an ISO string (as an ``AppliedTag`` gives it in JSON)."""
    at = stored["at"]
    return {
        "name": stored["name"],
        **_full(stored, templates),
        "at": at if isinstance(at, str) else to_jsonable_python(at),
    }


def readable_entry(stored: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A stored history entry in full: who or which rule (and version), why, when."""
    return {
        "at": stored["at"],
        "change": change_of(stored),
        "tag": stored["tag"],
        **{k: v for k, v in _full(stored, templates).items() if k != "family"},
    }


def listed(
    document: dict[str, Any], templates: stored_tags.ReasonTemplates | None = None
) -> dict[str, Any]:
    """A customer as lists, exports and the API show it (money in currency units, tags in
    full: ``stored.readable_tag``)."""
    return {
        "customer_id": document["_id"],
        "name": document.get("name"),
        "company": document.get("company"),
        "vip": bool(document.get("vip")),
        "tags": [readable_tag(tag, templates) for tag in document.get("tags", [])],
        "tag_names": document.get("tag_names", []),
        "orders": document.get("orders", 0),
        "spend": cents_text(document.get("spend_cents", 0)),
        "spend_365d": cents_text(document.get("spend_365d_cents", 0)),
        "first_order_at": iso_time(document.get("first_order_at")),
        "last_order_at": iso_time(document.get("last_order_at")),
        "top_category": document.get("top_category"),
    }


def iso_time(value: datetime | None) -> str | None:
    """A stored time in RFC 3339 (MongoDB's come back naive, in UTC)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()

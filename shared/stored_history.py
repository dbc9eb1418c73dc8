"""How an order's tag history is stored in MongoDB (``tag_history``), and read back in full.

Stored compact (issue #14: bytes written per order), as an order's tags are
(``shared.stored_tags``): a history entry records the order version its change made
(``version``, ``step``: the order changes were applied in, which event times need not follow)
and names the tags it added
(``{"tag": name}``); what they were (rule, rule version, reason) is on the order while they
stay, and in the entry that removed or replaced them (``removed``, ``replaced``: the tag as
it was; left out when none). The order's first change (version 1, step 0: it had no tags
before) names none: it added every tag the order held right after it. It has no document
of its own: the order keeps its event id and time (``with_first_change``). Reading the
entries newest first from the order's tags gives every entry in full (``readable_history``).
"""

from datetime import datetime
from typing import Any, cast

from shared.events import AppliedTag, TagSource
from shared.stored_tags import NOT_RECORDED, ReasonTemplates, reason_of, whole_rule


def history_tag(stored: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A history tag given in full (the earlier form, or a removed or replaced one)."""
    rule = whole_rule(stored)
    return {
        "tag": stored["tag"],
        "family": rule["family"],
        "source": stored.get("source", TagSource.RULE.value),
        "rule_id": rule["rule_id"],
        "rule_version": rule["rule_version"],
        "by": stored.get("by"),
        "reason": reason_of(stored, templates),
    }


def first_change_at(document: dict[str, Any]) -> datetime | None:
    """When a stored order's first change was made (``first_at``). None for an order stored
    before orders kept it: its first change has its own history entry."""
    return cast(datetime | None, document.get("first_at"))


def with_first_change(
    entries: list[dict[str, Any]],
    order_no: str,
    applied_events: list[str],
    first_at: datetime | None,
) -> list[dict[str, Any]]:
    """An order's stored history entries, preceded by its first change's entry where the order
    holds that instead: an order's first change (its first event, which added every tag it
    then had) is not written to ``tag_history``; the order keeps its event id (first of its
    ``applied_events``) and time (``first_change_at``), and ``readable_history`` finds what it
    added by walking back from the order's tags, as for a stored first entry. First in the
    list, so a sort by ``applied_order`` (stable) keeps it first among entries it ties with."""
    if first_at is None or not applied_events:
        return entries
    first_event = applied_events[0]
    if any(entry["event_id"] == first_event or _first_stored(entry) for entry in entries):
        # stored before orders kept it; or the first event added nothing, and the order's first
        # change was a later event's, stored (``OrderRecord.first_change_implied``)
        return entries
    return [{"order_no": order_no, "event_id": first_event, "at": first_at, "version": 1}, *entries]


def _first_stored(entry: dict[str, Any]) -> bool:
    """An entry of an order's first change (version 1, step 0: it names no tags)."""
    return entry.get("version") == 1 and not entry.get("step") and "added" not in entry


def applied_order(entry: dict[str, Any]) -> tuple[int, int, datetime]:
    """Sort key of an order's history entries as applied: by the order version each change
    made (entries written before versions were recorded come first, by time)."""
    return entry.get("version", 0), entry.get("step", 0), entry["at"]


def _applied_as_history(tag: AppliedTag) -> dict[str, Any]:
    return {
        "tag": tag.name,
        "family": tag.family,
        "source": tag.source.value,
        "rule_id": tag.rule_id,
        "rule_version": tag.rule_version,
        "by": tag.by,
        "reason": tag.reason,
    }


def readable_history(
    entries: list[dict[str, Any]],
    current: list[AppliedTag],
    templates: ReasonTemplates | None,
) -> list[dict[str, Any]]:
    """An order's history entries (as applied: ``applied_order``) in full: each tag an entry
    names is what the order carried right after it, found by walking back from the order's
    ``current`` tags through the entries that removed or replaced tags."""
    held = {tag.name: _applied_as_history(tag) for tag in current}
    readable = []
    for entry in reversed(entries):
        if "added" not in entry:  # the order's first change: every tag it then held
            if not held and not entry.get("removed"):
                continue  # kept on the order (``with_first_change``), and it added nothing
            entry = {**entry, "added": [{"tag": name} for name in held]}
        added = []
        for stored in entry["added"]:
            name = stored["tag"]
            if len(stored) > 1:  # written in full (the earlier form)
                added.append(history_tag(stored, templates))
            else:
                added.append(
                    held.get(name) or {**history_tag(stored, None), "reason": NOT_RECORDED}
                )
            held.pop(name, None)
        removed = [history_tag(tag, templates) for tag in entry.get("removed", ())]
        replaced = [history_tag(tag, templates) for tag in entry.get("replaced", ())]
        for before in (*removed, *replaced):
            held[before["tag"]] = before
        full = {**entry, "by": entry.get("by"), "added": added, "removed": removed}
        if replaced:
            full["replaced"] = replaced
        readable.append(full)
    readable.reverse()
    return readable

"""How an order's tags and its tag history are stored in MongoDB, and read back in full.

Stored compact, each fact once (issue #14: bytes written per order):

- an order's tag keeps only the fields it has; ``source`` only when not a rule's; ``at`` only
  when it differs from the order's ``tags_at`` (most tags of an order share one time); a rule
  tag's reason as ``args``, the values its rule's template placeholders took
  (``["express"]`` for ``"{shipping.method} shipping → urgent"``), rendered again on reading;
- a history entry records the order version its change made (``version``, ``step``: the order
  changes were applied in, which event times need not follow) and names the tags it added
  (``{"tag": name}``); what they were (rule, rule version, reason) is on the order while they
  stay, and in the entry that removed or replaced them (``removed``, ``replaced``: the tag as
  it was). Reading the entries newest first from the order's tags gives every entry in full
  (``readable_history``).

Documents written before (every field; the reason as a sentence; history tags in full) read
the same way, so no migration is needed; a stored order is rewritten in the compact form the
next time it changes.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from shared.events import AppliedTag, TagSource


class ReasonTemplates(Protocol):
    """The current rule set's reason templates (``services.tagger.rules.engine``)."""

    def args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None: ...

    def reason(self, rule_id: str, version: int, args: list[str]) -> str | None: ...


NOT_RECORDED = "not recorded"


def stored_tag(
    tag: AppliedTag,
    templates: ReasonTemplates | None,
    *,
    name_key: str = "name",
    tags_at: datetime | None = None,
) -> dict[str, Any]:
    """A tag as stored: only the fields it has, a rule's reason as its template's values when
    the template renders it back exactly (else the sentence, as given)."""
    stored: dict[str, Any] = {name_key: tag.name}
    if tag.family is not None:
        stored["family"] = tag.family
    if tag.source is not TagSource.RULE:
        stored["source"] = tag.source.value
    if tag.rule_id is not None:
        stored["rule_id"] = tag.rule_id
    if tag.rule_version is not None:
        stored["rule_version"] = tag.rule_version
    if tag.by is not None:
        stored["by"] = tag.by
    args = None
    if templates is not None and tag.source is TagSource.RULE and tag.rule_id is not None:
        args = templates.args_of(tag.rule_id, tag.rule_version or 0, tag.reason)
    if args is None:
        stored["reason"] = tag.reason
    elif args:
        stored["args"] = args
    if name_key == "name" and tag.at != tags_at:
        stored["at"] = tag.at
    return stored


def common_time(tags: Iterable[AppliedTag]) -> datetime | None:
    """The time most of the tags share (stored once, as the order's ``tags_at``)."""
    counts: dict[datetime, int] = {}
    for tag in tags:
        counts[tag.at] = counts.get(tag.at, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def reason_of(stored: dict[str, Any], templates: ReasonTemplates | None) -> str:
    """A stored tag's reason: kept as written, or its rule's template filled in again. For a
    rule version the current rules no longer hold: which rule and version, and the values
    (that version's template is in the rule versions' history)."""
    if "reason" in stored:
        return str(stored["reason"])
    rule_id, version = stored.get("rule_id"), stored.get("rule_version")
    args = [str(arg) for arg in stored.get("args", ())]
    if templates is not None and rule_id is not None and version is not None:
        reason = templates.reason(rule_id, version, args)
        if reason is not None:
            return reason
    if rule_id is None:
        return NOT_RECORDED
    return f"rule {rule_id} version {version}" + (f": {', '.join(args)}" if args else "")


def tag_of(
    stored: dict[str, Any], templates: ReasonTemplates | None, tags_at: Any = None
) -> AppliedTag:
    """A stored order tag (compact or in the earlier full form) as an ``AppliedTag``."""
    return AppliedTag(
        name=stored["name"],
        family=stored.get("family"),
        source=TagSource(stored.get("source", TagSource.RULE)),
        rule_id=stored.get("rule_id"),
        rule_version=stored.get("rule_version"),
        by=stored.get("by"),
        reason=reason_of(stored, templates),
        at=stored.get("at", tags_at),
    )


def order_tags(document: dict[str, Any], templates: ReasonTemplates | None) -> list[AppliedTag]:
    """A stored order's tags, in full."""
    tags_at = document.get("tags_at")
    return [tag_of(tag, templates, tags_at) for tag in document.get("tags", ())]


def readable_tags(
    document: dict[str, Any], templates: ReasonTemplates | None
) -> list[dict[str, Any]]:
    """A stored order's tags as readers see them (the Tag API, pages): every field, reasons
    rendered, times as ISO strings."""
    return [tag.model_dump(mode="json") for tag in order_tags(document, templates)]


def history_tag(stored: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A history tag given in full (the earlier form, or a removed or replaced one)."""
    return {
        "tag": stored["tag"],
        "family": stored.get("family"),
        "source": stored.get("source", TagSource.RULE.value),
        "rule_id": stored.get("rule_id"),
        "rule_version": stored.get("rule_version"),
        "by": stored.get("by"),
        "reason": reason_of(stored, templates),
    }


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
        added = []
        for stored in entry.get("added", ()):
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

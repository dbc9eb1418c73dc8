"""How a customer's tags and history entries keep their reasons: a rule's reason as the values
its template's placeholders took (``args``), as orders keep theirs (``shared.stored_tags``),
and rendered again on reading.

A customer's reasons quote figures that move with every order ("12 orders in 90 days"): stored
as sentences, each order rewrote one per rule tag (the most bytes of a customer's update after
its history). A reason is stored as values only when the rule's current template renders them
back to the very sentence; otherwise the sentence is kept. Documents written before (every
reason a sentence) read the same way, so no migration is needed.
"""

from typing import Any

from shared.stored_tags import ReasonTemplates, reason_of


def with_stored_reason(entry: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """``entry`` (a tag or a history entry, as dumped) as stored: its rule's reason as the
    template's values where they render it back exactly."""
    rule_id, reason = entry.get("rule_id"), entry.get("reason")
    if templates is None or entry.get("source") != "rule" or not rule_id or reason is None:
        return entry
    args = templates.args_of(str(rule_id), int(entry.get("rule_version") or 0), str(reason))
    if args is None:
        return entry
    stored = {key: value for key, value in entry.items() if key != "reason"}
    if args:
        stored["args"] = args
    return stored


def with_reason(entry: dict[str, Any], templates: ReasonTemplates | None) -> dict[str, Any]:
    """A stored tag or history entry with its reason as a sentence: as stored, or its rule's
    template filled in again (``shared.stored_tags.reason_of``)."""
    if "reason" in entry:
        return entry
    readable = {key: value for key, value in entry.items() if key != "args"}
    readable["reason"] = reason_of(entry, templates)
    return readable

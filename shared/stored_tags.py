"""How an order's tags are stored in MongoDB, and read back in full (its tag history:
``shared.stored_history``).

Stored compact, each fact once (issue #14: bytes written per order): an order's tag keeps
only the fields it has; its name is not repeated: the order's ``tag_names`` (indexed, for the
lists) holds the names in the order of ``tags``; ``source``
only when not a rule's; a rule tag's ``rule_id`` only when it is not the tag's family (the
status, category and region rules are named as their families), and neither where the
tag's name holds both (``status:pending``: ``family_in_name``, read since the release of
2026-11-27 afternoon, written since the next: ``WRITE_FAMILY_IN_NAME``); where the rule's id
names the tag's family (``customer.returning``, ``default.priority``) the id as ``rule`` and
no family (``family_of_rule``; read since the release of 2026-11-27 evening, written since
the one after it: ``WRITE_FAMILY_IN_RULE``); ``at`` only when it
differs from the order's ``tags_at`` and ``rule_version`` only when it differs from the
order's ``tags_rule_version`` (most tags of an order share one time and one rule version);
a rule tag's reason as ``args``, the values its rule's template placeholders took
(``"express"`` for ``"{shipping.method} shipping → urgent"``; several joined by
``ARGS_SEPARATOR``, ``stored_args``), rendered again on reading; none when the value is
the one its name holds (``"pending"`` for ``status:pending``, ``named_value``), nor when the
order's own facts give them again (``上海`` and ``east-china`` for ``"shipping province
{shipping.province} is in {value}"``: ``derived_args``; read since the release of
2026-11-27 evening, written since the one after it: ``WRITE_ARGS_FROM_FACTS``).

Documents written before (every field; the reason as a sentence; names in the tags; history
tags in full) read the same way, so no migration is needed; a stored order is rewritten in the
compact form the next time it changes.
"""

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from shared.events import AppliedTag, TagSource


class ReasonTemplates(Protocol):
    """The reason templates of the rule sets once in force (``services.tagger.rules.reasons``)."""

    def args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None: ...

    def reason(self, rule_id: str, version: int, args: list[str]) -> str | None: ...

    def placeholders(self, rule_id: str, version: int) -> int | None: ...

    def args_from_facts(
        self,
        rule_id: str,
        version: int,
        facts: Callable[[], Mapping[str, Any] | None],
        value: str | None = None,
    ) -> list[str] | None: ...

    def stored_facts(self, document: Mapping[str, Any]) -> Mapping[str, Any] | None: ...


Facts = Callable[[], Mapping[str, Any] | None]  # an order's facts, worked out when first asked


NOT_RECORDED = "not recorded"
_RULE = TagSource.RULE.value
REASON_MAX = 500  # ``AppliedTag.reason``'s limit
# Between a reason's values stored as one string: an array per tag cost the local MongoDB-wire
# server ~40 µs more an order than a string (it rewrites every array of a document it updates);
# a value holding the separator keeps the list form
ARGS_SEPARATOR = "\x1f"
# An order tag's reason values read from its name (``named_value``), not stored
ARGS_FROM_NAME = "args_from_name"
# An order tag's rule id where it names the tag's family (``family_of_rule``), stored instead
# of ``rule_id`` and the family
RULE_NAMING_FAMILY = "rule"
DEFAULT_RULE = "default"  # a family's default tag is given by the rule "default.<family>"
# Whether an order's rule tag named "family:value" by the rule named as its family leaves
# both out (~59 B an order). Expand, then contract (``docs/architecture.md``): read since the
# release of 2026-11-27 afternoon, written since the one after it, so a rollback to the first
# reads what this one writes. False writes the form before (the tests of reading it).
WRITE_FAMILY_IN_NAME = True
# Whether an order's rule tag leaves out the values its reason took when the order's own facts
# give them again (``derived_args``: ~52 B an order). Read since the release of 2026-11-27
# evening, written since the one after it (expand, then contract: ``docs/architecture.md``).
WRITE_ARGS_FROM_FACTS = True
# Whether an order's rule tag whose rule's id names its family (``customer.returning`` for a
# tag of family ``customer``; a family's default, ``default.priority``) stores the id as
# ``rule`` and no family (~70 B an order: ``family_of_rule``). Read since the release of
# 2026-11-27 evening, written since the one after it.
WRITE_FAMILY_IN_RULE = True
# Whether a tag stored whole (a customer's, one an order's history entry names) does the same,
# and stores its rule version only when it is not the first (``whole_rule``: ~50 B an order,
# most of it in the customer's writes). Read since the release of 2026-11-27 evening, written
# since the one after it. A rule's tag always stored its version before: none stored is the
# first.
WRITE_WHOLE_RULE_SHORT = True
FIRST_RULE_VERSION = 1
T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class TagDefaults:
    """What most of an order's tags share, stored once on the order (``tags_at``,
    ``tags_rule_version``): a tag stores its own only where it differs."""

    at: datetime | None = None
    rule_version: int | None = None

    @classmethod
    def of(cls, tags: Iterable[AppliedTag]) -> "TagDefaults":
        tags = list(tags)
        return cls(
            at=most_common([tag.at for tag in tags]),
            rule_version=most_common([t.rule_version for t in tags if t.rule_version is not None]),
        )

    @classmethod
    def of_document(cls, document: dict[str, Any]) -> "TagDefaults":
        return cls(at=document.get("tags_at"), rule_version=document.get("tags_rule_version"))


TAG_FORMS_KEPT = 20_000

# A tag's stored form but its time, by what decides it: orders share their tags' rules,
# families and (most) reasons, and customers their tags' reasons ("3 orders → returning"), so
# it is worked out once per such tag, not per order or customer. Each form keeps the templates
# it was made with (keyed by their id, kept alive by the form): a reloaded rule set's
# templates never find an earlier one's forms.
_tag_forms: dict[tuple[Any, ...], tuple[object, dict[str, Any]]] = {}


def stored_tag(
    tag: AppliedTag,
    templates: ReasonTemplates | None,
    *,
    name_key: str | None = None,
    defaults: TagDefaults = TagDefaults(),
    facts: Facts | None = None,
) -> dict[str, Any]:
    """A tag as stored: only the fields it has, a rule's reason as its template's values when
    the template renders it back exactly (else the sentence, as given). An order's tags
    (``name_key=None``) leave out their names (the order's ``tag_names``) and what they share
    with the order's other tags (``defaults``), and the values when the order's ``facts``
    give them again (``WRITE_ARGS_FROM_FACTS``); a history entry's keep both, and no time."""
    if name_key is None:
        key = (None, *tag.timeless(), defaults.rule_version, id(templates))
    else:
        key = (name_key, *tag.timeless(), id(templates))
    cached = _tag_forms.get(key)
    if cached is not None and cached[0] is templates:
        form = cached[1]
    else:
        if len(_tag_forms) >= TAG_FORMS_KEPT:
            _tag_forms.clear()
        timeless = TagDefaults(at=tag.at, rule_version=defaults.rule_version)
        form = _stored_tag(tag, templates, name_key, timeless)
        _tag_forms[key] = (templates, form)
    stored = dict(form)  # a copy: the caller's document may change
    if name_key is None and tag.at != defaults.at:
        stored["at"] = tag.at
    if (
        WRITE_ARGS_FROM_FACTS
        and facts is not None
        and templates is not None
        and "args" in stored
        and derived_args(tag.name, tag.family, _rule_of(tag), templates, facts)
        == args_of_stored(stored)
    ):
        del stored["args"]  # per order, not in the form: another order's facts may differ
    return stored


def derived_args(
    name: str,
    family: str | None,
    rule: dict[str, Any],
    templates: ReasonTemplates,
    facts: Facts,
) -> list[str] | None:
    """What a reader takes for the values of an order's rule tag stored without them: those
    its name holds (``status:pending``: ``named_value``) when they are as many as its
    template's placeholders (or its rule version is not held), else its own value and the
    order's facts (``args_from_facts``), else the name's. The writer leaves values out only
    when this gives them back exactly."""
    named = named_value(name, family)
    rule_id, version = rule.get("rule_id"), rule.get("rule_version")
    if rule_id is None or version is None:
        return named
    count = templates.placeholders(rule_id, version)
    if named is not None and (count is None or count == len(named)):
        return named  # the order's facts are not worked out
    value = named[0] if named is not None and len(named) == 1 else None
    derived = templates.args_from_facts(rule_id, version, facts, value)
    return named if derived is None else derived


def _stored_tag(
    tag: AppliedTag, templates: ReasonTemplates | None, name_key: str | None, defaults: TagDefaults
) -> dict[str, Any]:
    stored: dict[str, Any] = {} if name_key is None else {name_key: tag.name}
    if tag.family is not None:
        stored["family"] = tag.family
    if tag.source is not TagSource.RULE:
        stored["source"] = tag.source.value
    if name_key is not None:  # a history entry's tag, a customer's: whole
        stored.update({k: v for k, v in _rule_of(tag).items() if v is not None})
        if WRITE_WHOLE_RULE_SHORT and tag.source is TagSource.RULE:
            if _named_in_rule(tag):
                del stored["family"]
                stored[RULE_NAMING_FAMILY] = stored.pop("rule_id")
            if tag.rule_version == FIRST_RULE_VERSION:
                del stored["rule_version"]
    else:  # an order's: what it does not share with the order, None too
        if WRITE_FAMILY_IN_NAME and _named_by_family(tag):
            del stored["family"]
        elif WRITE_FAMILY_IN_RULE and _named_in_rule(tag):
            del stored["family"]
            stored[RULE_NAMING_FAMILY] = tag.rule_id
        elif tag.rule_id != _implied_rule_id(stored):
            stored["rule_id"] = tag.rule_id
        if tag.rule_version != defaults.rule_version:
            stored["rule_version"] = tag.rule_version
    if tag.by is not None:
        stored["by"] = tag.by
    args = reason_values(tag.source, tag.rule_id, tag.rule_version, tag.reason, templates)
    if args is None:
        stored["reason"] = tag.reason
    elif name_key is None and args == named_value(tag.name, tag.family):
        pass  # "status:pending" rendered with "pending": read back from the name (reason_of)
    elif args:
        stored["args"] = stored_args(args)
    if name_key is None and tag.at != defaults.at:
        stored["at"] = tag.at
    return stored


def reason_values(
    source: str,
    rule_id: str | None,
    version: int | None,
    reason: str,
    templates: ReasonTemplates | None,
) -> list[str] | None:
    """The values a rule's reason took, stored for it (a tag's, a history entry's): its
    template's, taken apart again; or, for a reason read where its rule version is not held (a
    rule set that no longer parses), the values the stand-in ``unrendered`` shows, so it is
    written back with them, not with the stand-in as its reason. None: the reason is stored as
    its sentence (a person's; one its template does not render back)."""
    if templates is None or source != _RULE or rule_id is None:
        return None
    args = templates.args_of(rule_id, version or 0, reason)
    if args is not None or version is None or templates.placeholders(rule_id, version) is not None:
        return args
    bare = unrendered(rule_id, version, [])
    if reason == bare:
        return []
    if reason.startswith(f"{bare}: ") and len(reason) < REASON_MAX:
        return reason[len(bare) + 2 :].split(", ")  # a value holding ", " comes back split
    return None


def stored_args(args: list[str]) -> str | list[str]:
    """A reason's values as stored: one string (``ARGS_SEPARATOR`` between them), the list
    when a value holds the separator."""
    if any(ARGS_SEPARATOR in arg for arg in args):
        return args
    return ARGS_SEPARATOR.join(args)


def named_value(name: str, family: str | None) -> list[str] | None:
    """The value a tag named "family:value" holds (``["pending"]`` for ``status:pending``):
    an order tag whose reason's values are just that stores none (``stored_tag``)."""
    if family is None or not name.startswith(family) or name[len(family) : len(family) + 1] != ":":
        return None
    return [name[len(family) + 1 :]]


def family_in_name(name: str) -> str | None:
    """The family a tag named "family:value" names (``status`` for ``status:pending``)."""
    family, colon, value = name.partition(":")
    return family if colon and family and value else None


def family_of_rule(rule_id: str) -> str | None:
    """The family a rule's id names: ``customer`` for ``customer.returning``, ``priority`` for
    a family's default rule ``default.priority`` (family names hold no dot)."""
    head, dot, rest = rule_id.partition(".")
    if not dot or not rest:
        return None
    return rest if head == DEFAULT_RULE else head


def _named_in_rule(tag: AppliedTag) -> bool:
    """A rule tag whose family its rule's id names (and that is not the rule named as its
    family, stored as neither): stored with ``rule`` for ``rule_id``, and no family."""
    return (
        tag.source is TagSource.RULE
        and tag.family is not None
        and tag.rule_id is not None
        and tag.rule_id != tag.family
        and family_of_rule(tag.rule_id) == tag.family
    )


def _named_by_family(tag: AppliedTag) -> bool:
    """A rule tag whose name holds its family, given by the rule named as that family
    (``status:pending`` by the ``status`` rule): stored as neither."""
    return (
        tag.source is TagSource.RULE
        and tag.family is not None
        and tag.rule_id == tag.family == family_in_name(tag.name)
    )


def args_of_stored(stored: dict[str, Any]) -> list[str]:
    """A stored tag's reason values (either form; none stored: none)."""
    args = stored.get("args", ())
    if isinstance(args, str):
        return args.split(ARGS_SEPARATOR)
    return [str(arg) for arg in args]


def _rule_of(tag: AppliedTag) -> dict[str, Any]:
    return {"rule_id": tag.rule_id, "rule_version": tag.rule_version}


def rule_id_of(stored: dict[str, Any], name: str | None = None) -> str | None:
    """The rule of a stored order tag named ``name`` (any form), None for a person's."""
    if stored.get("rule_id") is not None:
        return str(stored["rule_id"])
    if stored.get(RULE_NAMING_FAMILY) is not None:
        return str(stored[RULE_NAMING_FAMILY])
    if stored.get("source") in (None, TagSource.RULE.value):  # a server may give absent as null
        family = stored.get("family")
        if family is None and name is not None:
            return family_in_name(name)
        return cast(str | None, family)
    return None


def _implied_rule_id(stored: dict[str, Any]) -> str | None:
    """An order's rule tag that names no rule (in the compact form) was put there by the rule
    named as its family (the status, category and region rules)."""
    return stored.get("family") if "source" not in stored else None


def most_common(values: Iterable[T]) -> T | None:
    """The value most of ``values`` share (the first of those tied), None when there are none."""
    counts: dict[T, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if len(counts) < 2:  # most orders: their tags share one time and one rule version
        return next(iter(counts), None)
    return max(counts, key=counts.__getitem__)


def whole_rule(stored: dict[str, Any]) -> dict[str, Any]:
    """A tag stored whole (any form: ``WRITE_WHOLE_RULE_SHORT``): its family, rule and rule
    version, None for what it has not."""
    rule_id = stored.get("rule_id")
    family = stored.get("family")
    if rule_id is None and stored.get(RULE_NAMING_FAMILY) is not None:
        rule_id = stored[RULE_NAMING_FAMILY]
        family = family_of_rule(rule_id)
    # a rule's tag stored its version unless the first; a person's has none
    version = stored.get("rule_version", FIRST_RULE_VERSION if rule_id is not None else None)
    return {"family": family, "rule_id": rule_id, "rule_version": version}


def reason_of(stored: dict[str, Any], templates: ReasonTemplates | None) -> str:
    """A stored tag's reason: kept as written, or its rule's template filled in again. For a
    rule version the current rules no longer hold: which rule and version, and the values
    (that version's template is in the rule versions' history)."""
    if "reason" in stored:
        return str(stored["reason"])
    rule = whole_rule(stored)
    rule_id, version = rule["rule_id"], rule["rule_version"]
    args = args_of_stored(stored)
    if templates is not None and rule_id is not None and version is not None:
        reason = templates.reason(rule_id, version, args)
        if reason is None and stored.get(ARGS_FROM_NAME):  # or none: an earlier form's
            reason = templates.reason(rule_id, version, [])
        if reason is not None:
            return reason
    if rule_id is None:
        return NOT_RECORDED
    if stored.get(ARGS_FROM_NAME):
        args = []  # unconfirmed: a rule without values stores none either
    return unrendered(rule_id, version, args)


def unrendered(rule_id: str, version: int | None, args: list[str]) -> str:
    """The reason of a rule version the templates do not hold: the rule, its version and the
    values (that version's template is in the rule versions' history)."""
    named = f"rule {rule_id} version {version}" + (f": {', '.join(args)}" if args else "")
    return named[:REASON_MAX]  # as a rendered reason is: a tag's reason is at most that long


def tag_of(
    stored: dict[str, Any], templates: ReasonTemplates | None, tags_at: Any = None
) -> AppliedTag:
    """A stored order tag with its name and rule version (``stored_tags_of``; or in the
    earlier full form) as an ``AppliedTag``."""
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


def stored_tags_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored order's tags as stored, each with its name and rule version filled in from the
    order (``tag_names``, ``tags_rule_version``) where it leaves them out; its time may still
    be the order's ``tags_at``. Tags written in an earlier form are given as they are."""
    tags = document.get("tags") or []
    names = document.get("tag_names") or []
    if "tags_rule_version" not in document and all("name" in tag for tag in tags):
        return list(tags)  # an earlier form: every tag whole
    shared = document.get("tags_rule_version")
    return [_filled(name, tag, shared) for name, tag in zip(names, tags, strict=True)]


def _filled(name: str, tag: dict[str, Any], rule_version: int | None) -> dict[str, Any]:
    implied = {"rule_id": _implied_rule_id(tag)}
    if RULE_NAMING_FAMILY in tag:  # the rule's id names the tag's family: customer.returning
        rule_id = tag[RULE_NAMING_FAMILY]
        implied = {"rule_id": rule_id, "family": family_of_rule(rule_id)}
        tag = {k: v for k, v in tag.items() if k != RULE_NAMING_FAMILY}
    elif "source" not in tag and "family" not in tag and "rule_id" not in tag:
        family = family_in_name(name)  # a rule tag named by its rule's family: status:pending
        implied = {"family": family, "rule_id": family}
    filled = {"name": name, **implied, "rule_version": rule_version, **tag}
    if "args" not in tag and "reason" not in tag:
        named = named_value(name, filled.get("family"))
        if named is not None:  # the value the name holds ("pending" for status:pending)
            filled["args"] = named
            filled[ARGS_FROM_NAME] = True
    return filled


def order_tags(document: dict[str, Any], templates: ReasonTemplates | None) -> list[AppliedTag]:
    """A stored order's tags, in full: a rule tag stored without its reason's values takes
    them from its name or the order's facts (``derived_args``), worked out once an order."""
    tags_at = document.get("tags_at")
    facts = _once(lambda: templates.stored_facts(document) if templates is not None else None)
    return [
        tag_of(_with_args(tag, templates, facts), templates, tags_at)
        for tag in stored_tags_of(document)
    ]


def _with_args(
    tag: dict[str, Any], templates: ReasonTemplates | None, facts: Facts
) -> dict[str, Any]:
    if templates is None or "reason" in tag or tag.get("source") not in (None, _RULE):
        return tag
    if "args" in tag and not tag.get(ARGS_FROM_NAME):
        return tag
    args = derived_args(tag["name"], tag.get("family"), tag, templates, facts)
    if args is None or (tag.get(ARGS_FROM_NAME) and args == tag["args"]):
        return tag
    return {**{k: v for k, v in tag.items() if k != ARGS_FROM_NAME}, "args": args}


def _once(work: Facts) -> Facts:
    done: list[Mapping[str, Any] | None] = []

    def once() -> Mapping[str, Any] | None:
        if not done:
            done.append(work())
        return done[0]

    return once


def readable_tags(
    document: dict[str, Any], templates: ReasonTemplates | None
) -> list[dict[str, Any]]:
    """A stored order's tags as readers see them (the Tag API, pages): every field, reasons
    rendered, times as ISO strings."""
    return [tag.model_dump(mode="json") for tag in order_tags(document, templates)]

"""Deciding an order's tags from the rules, and merging them with the tags it already carries."""

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from services.tagger.rules.customer_rules import CustomerRule
from services.tagger.rules.schema import PLACEHOLDER, Rule, RuleSet
from shared.events import AppliedTag, TagSource, built, to_millisecond

T = TypeVar("T")

_TAG_UNSAFE = re.compile(r"[^\w:.-]+")  # keeps letters of any script: "category:家电"


class Decision(NamedTuple):
    """A rule's verdict that an order should carry a tag, and why (a named tuple: built for
    every tag of every order, at the cost of a tuple)."""

    tag: str
    family: str | None
    rule_id: str
    rule_version: int
    reason: str


@dataclass(frozen=True, slots=True)
class TagChange:
    tags: list[AppliedTag]
    added: list[AppliedTag]
    removed: list[AppliedTag]
    dropped_by_limit: list[Decision]


def default_reason(family: str, default: str) -> str:
    return f"no {family} rule matched → {default}"


def fires(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Whether the rule's conditions hold for the order (its tags then depend on its tag spec)."""
    return rule.applies(facts)


def decide(
    rules: RuleSet,
    facts: Mapping[str, Any],
    *,
    verdicts: dict[str, bool] | None = None,
    reasons: bool = True,
) -> list[Decision]:
    """Every tag the rules give this order, in rule order; first rule wins an exclusive family.

    Comparing two rule sets over one order (the diff, shadow mode) passes the same ``verdicts``
    to both calls: a rule whose conditions are the same in both is evaluated once. Without
    ``reasons`` the reasons are left empty (a comparison needs only the tags)."""
    exclusive = rules.exclusive_families
    plan = _plan_of(rules)
    decisions: list[Decision] = []
    seen_tags: set[str] = set()
    filled_families: set[str] = set()
    for rule, condition_key, fixed in plan.rules:
        if verdicts is None:
            verdict = rule.applies(facts)
        elif (known := verdicts.get(condition_key)) is not None:
            verdict = known
        else:
            verdict = verdicts[condition_key] = rule.applies(facts)
        if not verdict:
            continue
        for tag, value in fixed or _tags_of(rule, facts):
            family = rules.family_of(tag, rule)
            if tag in seen_tags or (family in exclusive and family in filled_families):
                continue
            seen_tags.add(tag)
            if family is not None:
                filled_families.add(family)
            decisions.append(
                Decision(
                    tag,
                    family,
                    rule.id,
                    rule.version,
                    render_reason(rule.reason, facts, value) if reasons else "",
                )
            )
    for family, default in plan.defaults:
        if family not in filled_families:
            decisions.append(default)
    return decisions


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``decide`` reads of a rule set, prepared once per rule set: each rule with its
    condition key and its fixed tag (None: the tags come from a fact), and each family's
    default decision."""

    rules: list[tuple[Rule, str, tuple[tuple[str, None]] | None]]
    defaults: list[tuple[str, Decision]]


def once_per_rule_set(
    cache: dict[int, tuple[RuleSet, T]], rules: RuleSet, build: Callable[[RuleSet], T]
) -> T:
    """What ``build`` makes of a rule set, made once per rule set (a reload makes it again;
    the rule set kept beside it tells a reused ``id`` apart)."""
    cached = cache.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    if len(cache) > 16:
        cache.clear()
    made = build(rules)
    cache[id(rules)] = (rules, made)
    return made


_PLANS: dict[int, tuple[RuleSet, _Plan]] = {}


def _plan_of(rules: RuleSet) -> _Plan:
    return once_per_rule_set(_PLANS, rules, _build_plan)


def _build_plan(rules: RuleSet) -> _Plan:
    return _Plan(
        rules=[
            (rule, key, None if rule.tag is None else ((rule.tag, None),))
            for rule, key in zip(rules.rules, rules.condition_keys, strict=True)
        ],
        defaults=[
            (
                f.name,
                Decision(
                    f.default, f.name, f"default.{f.name}", 1, default_reason(f.name, f.default)
                ),
            )
            for f in rules.families
            if f.default is not None
        ],
    )


def merge_tags(
    current: list[AppliedTag],
    decisions: list[Decision],
    *,
    exclusive_families: set[str],
    max_tags: int,
    at: datetime,
) -> TagChange:
    """The order's new tag set: manual tags stay, rule tags follow the latest decisions.

    A manual tag beats any rule in its exclusive family (a person said "urgent": no rule makes it
    "regular"). Rule tags kept from before keep their original time, so re-applying the same
    event yields the same document. Past ``max_tags``, later rule tags are dropped and reported.
    """
    at = to_millisecond(at)  # what MongoDB's dates keep
    manual = [tag for tag in current if tag.source is TagSource.MANUAL]
    manual_names = {tag.name for tag in manual}
    manual_families = {tag.family for tag in manual if tag.family in exclusive_families}
    previous_rule_tags = {tag.name: tag for tag in current if tag.source is TagSource.RULE}

    room = max(max_tags - len(manual), 0)
    rule_tags: list[AppliedTag] = []
    dropped: list[Decision] = []
    for decision in decisions:
        if decision.tag in manual_names or decision.family in manual_families:
            continue
        if len(rule_tags) >= room:
            dropped.append(decision)
            continue
        before = previous_rule_tags.get(decision.tag)
        if before is not None and (before.rule_id, before.rule_version) == (
            decision.rule_id,
            decision.rule_version,
        ):
            rule_tags.append(before)
        else:
            rule_tags.append(decided_tag(decision, at))

    tags = manual + rule_tags
    if not current:  # a new order (most of them): it adds every tag and removes none
        return TagChange(tags=tags, added=list(tags), removed=[], dropped_by_limit=dropped)
    new_names = {tag.name for tag in tags}
    old_names = {tag.name for tag in current}
    return TagChange(
        tags=tags,
        added=[tag for tag in tags if tag.name not in old_names],
        removed=[tag for tag in current if tag.name not in new_names],
        dropped_by_limit=dropped,
    )


def decided_tag(decision: Decision, at: datetime) -> AppliedTag:
    """The tag a rule's decision gives, since ``at``. Not validated again: a decision's fields
    come from the validated rule set and the order's or customer's facts, cut to their fields'
    lengths (``_tags_of``, ``decide_customer``, ``render_reason``); validating it cost more
    than the rest of deciding it."""
    return built(
        AppliedTag,
        {
            "name": decision.tag,
            "family": decision.family,
            "source": TagSource.RULE,
            "rule_id": decision.rule_id,
            "rule_version": decision.rule_version,
            "by": None,
            "reason": decision.reason,
            "at": at,
        },
    )


def render_reason(template: str, facts: Mapping[str, Any], value: Any = None) -> str:
    """``"{shipping.method} shipping → urgent"`` with the order's facts filled in."""
    parts = _template_parts(template)
    if len(parts) == 1:
        return template[:500]
    rendered = [parts[0]]
    for index in range(1, len(parts), 2):
        name = parts[index]
        rendered.append(_shown(value if name == "value" else facts.get(name)))
        rendered.append(parts[index + 1])
    return "".join(rendered)[:500]


def _shown(found: Any) -> str:
    if found is None:
        return "—"
    if isinstance(found, Decimal):
        return f"{found:.2f}"
    if isinstance(found, float):
        return f"{found:.1f}"
    return str(found)


_PARTS: dict[str, list[str]] = {}


def _template_parts(template: str) -> list[str]:
    """The template split once: literal, placeholder name, literal, ... (rules repeat)."""
    parts = _PARTS.get(template)
    if parts is None:
        if len(_PARTS) > 10_000:
            _PARTS.clear()
        parts = _PARTS[template] = PLACEHOLDER.split(template)
    return parts


def _tags_of(rule: Rule, facts: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if rule.tag is not None:
        yield rule.tag, None
        return
    assert rule.tag_from is not None
    raw = facts.get(rule.tag_from)
    for value in raw if isinstance(raw, list) else [raw]:
        if value is None or value == "":
            continue
        slug = _slug(str(value))
        if slug:
            yield f"{rule.tag_prefix}{slug}"[:64], value


@functools.lru_cache(maxsize=16_384)  # categories, provinces, channels: values repeat
def _slug(value: str) -> str:
    return _TAG_UNSAFE.sub("-", value.strip().lower()).strip("-")


KNOWN_REASONS_KEPT = 50_000


@dataclass(frozen=True)
class ReasonLabels:
    """A language's display labels for what reasons name: fact values (``express`` → 快递,
    ``east-china`` → 华东, per fact), tags and families, and the words of a family's default
    reason (``"未命中任何{family}规则 → {tag}"``). Built by ``builtin_labels.reason_labels``."""

    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    families: Mapping[str, str] = field(default_factory=dict)
    default_reason: str | None = None

    def value(self, fact: str | None, rendered: str) -> str:
        """A rendered fact value as the reader calls it (the value itself when unlabelled)."""
        return self.values.get(fact or "", {}).get(rendered, rendered)


class ReasonTemplates:
    """The reason templates of one rule set, by rule id and version.

    A rule tag's reason is stored as the values its template's placeholders took (``["express"]``
    for ``"{shipping.method} shipping → urgent"``), not as the rendered sentence: a few bytes
    instead of a sentence per tag, and the words can be shown in another language. ``args_of``
    takes a rendered reason apart (None when it is not the template's rendering: then it is
    kept as it is), ``reason`` puts it together again."""

    def __init__(self, rules: RuleSet, *, customer: bool = False) -> None:
        """``customer``: the templates of the customer rules (their ids are their own)."""
        listed: Sequence[Rule | CustomerRule] = rules.customer_rules if customer else rules.rules
        self._templates = {(rule.id, rule.version): rule.reason for rule in listed}
        # the fact each placeholder shows ({value} shows the rule's tag_from), for its labels
        self._facts = {
            (rule.id, rule.version): [
                rule.tag_from if name == "value" else name
                for name in PLACEHOLDER.findall(rule.reason)
            ]
            for rule in listed
        }
        self._defaults: dict[tuple[str, int], tuple[str, str]] = {}
        self._translations: dict[tuple[str, int], dict[str, str]] = {
            (rule.id, rule.version): {str(k): v for k, v in rule.reasons.items()}
            for rule in listed
            if rule.reasons
        }
        for family in [] if customer else rules.families:
            if family.default is not None:
                literal = default_reason(family.name, family.default)
                self._templates[(f"default.{family.name}", 1)] = literal
                self._defaults[(f"default.{family.name}", 1)] = (family.name, family.default)
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._known: dict[tuple[str, int, str], list[str] | None] = {}  # reasons repeat
        self._rendered: dict[tuple[Any, ...], str] = {}  # and so do their values

    def args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None:
        key = (rule_id, version, reason)
        if key in self._known:
            return self._known[key]
        args = self._args_of(rule_id, version, reason)
        if len(self._known) >= KNOWN_REASONS_KEPT:
            self._known.clear()
        self._known[key] = args
        return args

    def template(self, rule_id: str, version: int) -> str | None:
        return self._templates.get((rule_id, version))

    def _args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None:
        template = self._templates.get((rule_id, version))
        if template is None:
            return None
        if reason == template:
            return [] if not PLACEHOLDER.search(template) else None
        pattern = self._patterns.get(template)
        if pattern is None:
            literals = PLACEHOLDER.split(template)[::2]
            pattern = re.compile("(.*?)".join(map(re.escape, literals)), re.DOTALL)
            self._patterns[template] = pattern
        match = pattern.fullmatch(reason)
        if match is None:
            return None
        args = list(match.groups())
        # ambiguous splits ("{a} {b}" with spaces in a) are checked by rendering them back
        return args if fill_reason(template, args) == reason else None

    def reason(self, rule_id: str, version: int, args: list[str]) -> str | None:
        """The reason as rendered when the tag was applied, or None for a rule version this
        rule set does not hold."""
        key = (rule_id, version, *args)
        known = self._rendered.get(key)
        if known is not None:
            return known
        template = self._templates.get((rule_id, version))
        if template is None or len(PLACEHOLDER.findall(template)) != len(args):
            return None
        reason = fill_reason(template, args)
        if len(self._rendered) >= KNOWN_REASONS_KEPT:
            self._rendered.clear()
        self._rendered[key] = reason
        return reason

    def in_language(
        self, language: str | None, labels: ReasonLabels | None = None
    ) -> "ReasonTemplates | TranslatedReasons":
        """These templates, rendering reasons in ``language`` where the rule gives them in it
        (the rule's own words otherwise), with fact values shown by their ``labels``."""
        if language is None or (not self._translations and labels is None):
            return self
        return TranslatedReasons(self, language, labels or ReasonLabels())

    def translated(self, rule_id: str, version: int, language: str) -> str | None:
        words: dict[str, str] = self._translations.get((rule_id, version), {})
        return words.get(language)

    def facts_shown(self, rule_id: str, version: int) -> list[str | None]:
        """Per placeholder of the rule's reason, the fact whose value it shows."""
        return list(self._facts.get((rule_id, version), []))

    def default_of(self, rule_id: str, version: int) -> tuple[str, str] | None:
        """(family, default tag) when the reason is a family default's, else None."""
        return self._defaults.get((rule_id, version))


class TranslatedReasons:
    """``ReasonTemplates.in_language``: a rule's ``reasons[language]`` (its own words when it
    has none in the language) filled with a stored tag's values, each shown by its label in
    the language; taking reasons apart stays with the rule's own words."""

    def __init__(self, templates: ReasonTemplates, language: str, labels: ReasonLabels) -> None:
        self._templates = templates
        self._language = language
        self._labels = labels

    def args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None:
        return self._templates.args_of(rule_id, version, reason)

    def reason(self, rule_id: str, version: int, args: list[str]) -> str | None:
        templates, labels = self._templates, self._labels
        default = templates.default_of(rule_id, version)
        if default is not None and labels.default_reason is not None and not args:
            family, tag = default
            return labels.default_reason.format(
                family=labels.families.get(family, family), tag=labels.tags.get(tag, tag)
            )
        words = templates.translated(rule_id, version, self._language)
        if words is None:
            words = templates.template(rule_id, version)
        if words is None or len(PLACEHOLDER.findall(words)) != len(args):
            return templates.reason(rule_id, version, args)
        facts = templates.facts_shown(rule_id, version)
        shown = [labels.value(fact, arg) for fact, arg in zip(facts, args, strict=True)]
        return fill_reason(words, shown)


def fill_reason(template: str, args: list[str]) -> str:
    """A template's placeholders replaced, in order, by already rendered values (one each),
    from the template split once (``_template_parts``), as ``render_reason`` fills it."""
    parts = _template_parts(template)
    if len(args) != len(parts) // 2:
        raise ValueError(f"{template!r} has {len(parts) // 2} placeholders, got {len(args)} values")
    filled = [parts[0]]
    for arg, literal in zip(args, parts[2::2], strict=True):
        filled.append(arg)
        filled.append(literal)
    return "".join(filled)[:500]


_TEMPLATES: dict[int, tuple[RuleSet, ReasonTemplates]] = {}


def reason_templates(rules: RuleSet) -> ReasonTemplates:
    """The rule set's templates, built once per rule set (a reload builds them again)."""
    return once_per_rule_set(_TEMPLATES, rules, ReasonTemplates)


_CUSTOMER_TEMPLATES: dict[int, tuple[RuleSet, ReasonTemplates]] = {}


def customer_reason_templates(rules: RuleSet) -> ReasonTemplates:
    """The customer rules' templates, built once per rule set."""
    return once_per_rule_set(
        _CUSTOMER_TEMPLATES, rules, lambda r: ReasonTemplates(r, customer=True)
    )

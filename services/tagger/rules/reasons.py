"""A rule tag's reason: rendered from its rule's template when the tag is decided, stored as
the values its placeholders took, and rendered again on reading, in the reader's language.

The templates of every rule set that was in force are known (``RuleBook.earlier``), not only
those in force now: a tag of an earlier rule version still reads as the sentence it was given.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from services.tagger.rules.customer_rules import CustomerRule, lower_bounded
from services.tagger.rules.facts import QUOTED_AS_STORED, facts_of_stored
from services.tagger.rules.reason_values import for_people
from services.tagger.rules.schema import (
    PLACEHOLDER,
    Rule,
    RuleFileError,
    RuleSet,
    once_per_rule_set,
)
from shared.money import grouped_numbers


def default_reason(family: str, default: str) -> str:
    return f"no {family} rule matched → {default}"


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


KNOWN_REASONS_KEPT = 50_000
_MISSING = object()


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
    """The reason templates of a rule set and those recorded before it, by rule id and version.

    A rule tag's reason is stored as the values its template's placeholders took (``["express"]``
    for ``"{shipping.method} shipping → urgent"``), not as the rendered sentence: a few bytes
    instead of a sentence per tag, and the words can be shown in another language. ``args_of``
    takes a rendered reason apart (None when it is not the template's rendering: then it is
    kept as it is), ``reason`` puts it together again."""

    def __init__(
        self, rules: RuleSet, *, customer: bool = False, earlier: Sequence[RuleSet] = ()
    ) -> None:
        """``customer``: the templates of the customer rules (their ids are their own).
        ``earlier``: the rule sets in force before (longest ago first), for the tags their rule
        versions gave; where two sets hold one rule version, the later one's template holds
        (``rules`` last: give a rule a new version when its words change). A family's default
        reason is the rules' own: it names the default tag, which an earlier set may not share."""
        self._templates: dict[tuple[str, int], str] = {}
        # the fact each placeholder shows ({value} shows the rule's tag_from), for its labels
        self._facts: dict[tuple[str, int], list[str | None]] = {}
        self._placeholders: dict[tuple[str, int], list[str]] = {}  # as named in the reason
        self._defaults: dict[tuple[str, int], tuple[str, str]] = {}
        self._translations: dict[tuple[str, int], dict[str, str]] = {}
        # the facts each rule version tests against a lower bound (its days shown rounded up)
        self._lower: dict[tuple[str, int], set[str]] = {}
        for rule_set in earlier:
            self._add(rule_set, customer, defaults=False)
        self._add(rules, customer, defaults=True)
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._known: dict[tuple[str, int, str], list[str] | None] = {}  # reasons repeat
        self._rendered: dict[tuple[Any, ...], str] = {}  # and so do their values

    def _add(self, rules: RuleSet, customer: bool, *, defaults: bool) -> None:
        listed: Sequence[Rule | CustomerRule] = rules.customer_rules if customer else rules.rules
        for rule in listed:
            key = (rule.id, rule.version)
            self._templates[key] = rule.reason
            self._placeholders[key] = PLACEHOLDER.findall(rule.reason)
            self._facts[key] = [
                rule.tag_from if name == "value" else name for name in self._placeholders[key]
            ]
            self._translations.pop(key, None)
            self._lower[key] = lower_bounded(rule.when)
            if rule.reasons:
                self._translations[key] = {str(k): v for k, v in rule.reasons.items()}
        for family in [] if customer or not defaults else rules.families:
            if family.default is not None:
                key = (f"default.{family.name}", 1)
                self._templates[key] = default_reason(family.name, family.default)
                self._placeholders[key], self._facts[key] = [], []  # it shows none
                self._defaults[key] = (family.name, family.default)

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

    def placeholders(self, rule_id: str, version: int) -> int | None:
        """How many values a rule version's reason takes (None: a version not held)."""
        shown = self._facts.get((rule_id, version))
        return None if shown is None else len(shown)

    def args_from_facts(
        self,
        rule_id: str,
        version: int,
        facts: Callable[[], Mapping[str, Any] | None],
        value: str | None = None,
    ) -> list[str] | None:
        """The values a rule version's placeholders take, rendered as its reason renders them:
        ``{value}`` the tag's own (``value``: the one its name holds), any other the order's
        fact where it is the stored order's own data (``QUOTED_AS_STORED``: no rule of code
        between, so a later release reads the same), the ``facts`` asked for only then. None:
        a rule version not held, facts not to be had, or a placeholder neither gives."""
        names = self._placeholders.get((rule_id, version))
        if names is None:
            return None
        args = []
        known: Mapping[str, Any] | None = None
        for name in names:
            if name == "value":
                if value is None:
                    return None
                args.append(value)
                continue
            if name not in QUOTED_AS_STORED:
                return None
            known = known if known is not None else facts()
            found = None if known is None else known.get(name, _MISSING)
            if known is None or found is _MISSING or isinstance(found, list | tuple | set):
                return None
            args.append(_shown(found))
        return args

    def stored_facts(self, document: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """An order document's facts as the tagger stored it (None: it does not hold them)."""
        try:
            return facts_of_stored(document)
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
            return None

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

    def lower_bounded(self, rule_id: str, version: int) -> set[str]:
        """The facts a rule version tests with ``gt`` or ``gte``."""
        return self._lower.get((rule_id, version), set())

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

    def placeholders(self, rule_id: str, version: int) -> int | None:
        return self._templates.placeholders(rule_id, version)

    def args_from_facts(
        self,
        rule_id: str,
        version: int,
        facts: Callable[[], Mapping[str, Any] | None],
        value: str | None = None,
    ) -> list[str] | None:
        return self._templates.args_from_facts(rule_id, version, facts, value)

    def stored_facts(self, document: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return self._templates.stored_facts(document)

    def facts_shown(self, rule_id: str, version: int) -> list[str | None]:
        return self._templates.facts_shown(rule_id, version)

    def with_values(self, fact: str, shown: Mapping[str, str]) -> "TranslatedReasons":
        """These reasons with more of ``fact``'s values labelled: what the data names them
        (a product's SKU by its name, read for the page at hand)."""
        values = {**self._labels.values, fact: {**self._labels.values.get(fact, {}), **shown}}
        labels = replace(self._labels, values=values)
        return TranslatedReasons(self._templates, self._language, labels)

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
        lower = templates.lower_bounded(rule_id, version)
        shown = [
            for_people(fact, labels.value(fact, arg), round_up=fact in lower)
            for fact, arg in zip(facts, args, strict=True)
        ]
        if self._language.startswith("zh"):
            return fill_in_chinese(grouped_numbers(words), shown)
        return fill_reason(grouped_numbers(words), shown)


_CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def fill_in_chinese(template: str, args: list[str]) -> str:
    """``fill_reason`` as Chinese is written: a space the template puts between its Chinese
    words and a value sets a Latin value apart (订单状态为 on-hold) but not a Chinese one
    (订单状态为已退货); a value's own spaces stay (北欧 落地灯)."""
    parts = _template_parts(template)
    literals = parts[::2]
    if len(args) != len(literals) - 1:
        return fill_reason(template, args)  # raises, naming the mismatch
    for index, arg in enumerate(args):
        left, right = literals[index], literals[index + 1]
        if arg and left[-2:-1] and left[-1] == " " and _both_chinese(left[-2], arg[0]):
            literals[index] = left[:-1]
        if arg and right[1:2] and right[0] == " " and _both_chinese(arg[-1], right[1]):
            literals[index + 1] = right[1:]
    filled = [literals[0]]
    for arg, literal in zip(args, literals[1:], strict=True):
        filled += [arg, literal]
    return "".join(filled)[:500]


def _both_chinese(one: str, other: str) -> bool:
    return bool(_CHINESE.fullmatch(one) and _CHINESE.fullmatch(other))


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


def reworded(rules: RuleSet, earlier: Sequence[RuleSet]) -> list[tuple[str, str]]:
    """The rules of ``rules`` that give a rule version once in force (in ``earlier``) other
    words, as ``RuleFileError`` problems. Stored reasons are the values a version's template
    took, rendered again with that version's words; so a rule whose words change takes a new
    version, and the words a stored tag or history entry was given stay its words."""
    given: dict[tuple[bool, str, int], tuple[str, str | None]] = {}
    for rule_set in earlier:  # longest ago first: where two gave one version, the later holds
        for customer, listed in _rule_lists(rule_set):
            given.update({(customer, r.id, r.version): _words(r) for r in listed})
    problems = []
    for customer, listed in _rule_lists(rules):
        for rule in listed:
            before = given.get((customer, rule.id, rule.version))
            if before is not None and before != _words(rule):
                unused = 1 + max(v for c, i, v in given if (c, i) == (customer, rule.id))
                problems.append(
                    (
                        f"rule {rule.id}, field reason",
                        f"version {rule.version} was in force with the reason {before[0]!r}"
                        + (f" showing {before[1]} as its value" if before[1] else "")
                        + f"; a rule whose reason changes takes a new version ({unused})",
                    )
                )
    return problems


def keep_words(rules: RuleSet, earlier: Sequence[RuleSet], source: str = "rules") -> None:
    """Refuse ``rules`` (``RuleFileError``) if it rewords a rule version once in force."""
    problems = reworded(rules, earlier)
    if problems:
        raise RuleFileError(
            f"{source}: " + "; ".join(f"{where}: {problem}" for where, problem in problems),
            problems,
        )


def _words(rule: Rule | CustomerRule) -> tuple[str, str | None]:
    """A rule version's reason, and the fact its ``{value}`` shows (a fact-named tag's)."""
    return rule.reason, rule.tag_from if "{value}" in rule.reason else None


def _rule_lists(rules: RuleSet) -> list[tuple[bool, Sequence[Rule | CustomerRule]]]:
    return [(False, rules.rules), (True, rules.customer_rules)]


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

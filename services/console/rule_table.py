"""The Rules page's tables: each rule of a rule-set version in words (zh-CN or en) and how many
orders carry a tag it gave; each customer rule, and how many customers carry a tag it gave.
Rendered into the page, and served as JSON so the page shows the version just activated or
rolled back at once: the process serving the page follows a new version only on its rule
watcher's next round (2 s), and a page never reloads by itself."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from services.console.i18n import LANG_COOKIE, Language, language, pick_language
from services.console.rule_words import fact_name, in_words, reason_template
from services.tagger.errors import NotFound
from services.tagger.http.deps import tagger_of
from services.tagger.http.rules import VERSION_PATTERN
from services.tagger.rules.customer_rules import CustomerRule
from services.tagger.rules.schema import Rule, RuleSet
from shared.auth import ApiKey, Scope, require_scope

router = APIRouter(prefix="/console/api", tags=["console"], include_in_schema=False)
Reader = Annotated[ApiKey, Depends(require_scope(Scope.READ))]


def rule_rows(rules: RuleSet, lang: Language, hits: dict[str, int]) -> list[dict[str, Any]]:
    """The table's rows, in the rule file's order (the order rules are decided in)."""
    return [
        {
            **_in_words(rule, lang),
            "holds_while": in_words(rule.holds_while, lang.code) if rule.holds_while else "",
            "hits": hits.get(rule.id, 0),
        }
        for rule in rules.rules
    ]


def customer_rule_rows(
    rules: RuleSet, lang: Language, customers: dict[str, int]
) -> list[dict[str, Any]]:
    """The customer rules' rows, in the rule file's order; ``each`` says what a rule is tested
    once per (a category, a product), ``customers`` how many carry a tag it gave."""
    return [
        {
            **_in_words(rule, lang),
            "each": lang.t(f"rules.each_{rule.each}") if rule.each else "",
            "customers": customers.get(rule.id, 0),
        }
        for rule in rules.customer_rules
    ]


def _in_words(rule: Rule | CustomerRule, lang: Language) -> dict[str, Any]:
    """What both tables show of a rule."""
    return {
        "id": rule.id,
        "version": rule.version,
        "tag": rule.tag or f"{rule.tag_prefix}<{rule.tag_from}>",
        "tag_label": tag_words(rule, lang),
        "when": in_words(rule.when, lang.code) if rule.when else lang.t("rules.always"),
        "reason": reason_template(rule, lang.code),
    }


def tag_words(rule: Rule | CustomerRule, lang: Language) -> str:
    """The tag a rule gives, as the reader calls it; a tag named from a fact in its prefix's
    words where the labels give them (``偏好：<品类>`` for ``prefers:<category>``), else by
    its family and the fact (``状态·<订单状态>`` for ``status:<status>``)."""
    if rule.tag is not None:
        return lang.tag_label(rule.tag)
    fact = f"<{fact_name(rule.tag_from or '', lang.code)}>"
    prefixes: dict[str, Any] = lang.labels.get("prefixed") or {}
    prefixed: dict[str, str] = prefixes.get(rule.tag_prefix) or {}
    if "label" in prefixed:
        return str(prefixed["label"]).format(value=fact)
    kind = lang.labels["families"].get(rule.family or "", rule.tag_prefix.rstrip(":"))
    return f"{kind}·{fact}"


def language_of(request: Request) -> Language:
    return language(
        pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    )


@router.get("/rules/table/{version}")
async def rule_table(
    request: Request,
    key: Reader,
    version: Annotated[str, Path(pattern=VERSION_PATTERN)],
    fresh: bool = False,
) -> dict[str, Any]:
    """The tables' rows for a recorded version (the page asks for the one now in force, with
    ``fresh`` hits after an activation's backfill moved them)."""
    stored = await tagger_of(request).rule_versions.get(version)
    if stored is None:
        raise NotFound(f"no rule version {version!r}")
    rules, lang = stored.rule_set(), language_of(request)
    hits = (await tagger_of(request).rule_hits.get(fresh=fresh)).value
    return {
        "version": version,
        "rules": rule_rows(rules, lang, hits.orders),
        "customer_rules": customer_rule_rows(rules, lang, hits.customers),
    }

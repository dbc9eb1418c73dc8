"""The Rules page's tables: each rule of a rule-set version in words (zh-CN or en) and how many
orders carry a tag it gave; each customer rule, and how many customers carry a tag it gave.
Rendered into the page, and served as JSON so the page shows the version just activated or
rolled back at once: the process serving the page follows a new version only on its rule
watcher's next round (2 s), and a page never reloads by itself."""

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from services.console.api import rule_hit_counts
from services.console.deps import database_of
from services.console.i18n import LANG_COOKIE, Language, language, pick_language
from services.console.rule_words import fact_name, in_words, reason_template
from services.tagger.builtin_labels import label_file
from services.tagger.errors import NotFound
from services.tagger.http.deps import tagger_of
from services.tagger.http.rules import VERSION_PATTERN
from services.tagger.rules.customer_rules import CustomerRule
from services.tagger.rules.schema import Rule, RuleSet
from shared.auth import ApiKey, Scope, require_scope
from shared.events import TagSource

router = APIRouter(prefix="/console/api", tags=["console"], include_in_schema=False)
Reader = Annotated[ApiKey, Depends(require_scope(Scope.READ))]


def rule_rows(rules: RuleSet, lang: Language, hits: dict[str, int]) -> list[dict[str, Any]]:
    """The table's rows, in the rule file's order (the order rules are decided in)."""
    rows = []
    for rule in rules.rules:
        tag = rule.tag or f"{rule.tag_prefix}<{rule.tag_from}>"
        rows.append(
            {
                "id": rule.id,
                "version": rule.version,
                "tag": tag,
                "tag_label": tag_words(rule, lang),
                "when": in_words(rule.when, lang.code) if rule.when else lang.t("rules.always"),
                "holds_while": in_words(rule.holds_while, lang.code) if rule.holds_while else "",
                "reason": reason_template(rule, lang.code),
                "hits": hits.get(rule.id, 0),
            }
        )
    return rows


def customer_rule_rows(
    rules: RuleSet, lang: Language, customers: dict[str, int]
) -> list[dict[str, Any]]:
    """The customer rules' rows, in the rule file's order; ``each`` says what a rule is tested
    once per (a category, a product), ``customers`` how many carry a tag it gave."""
    return [
        {
            "id": rule.id,
            "version": rule.version,
            "tag": rule.tag or f"{rule.tag_prefix}<{rule.tag_from}>",
            "tag_label": tag_words(rule, lang),
            "each": lang.t(f"rules.each_{rule.each}") if rule.each else "",
            "when": in_words(rule.when, lang.code) if rule.when else lang.t("rules.always"),
            "reason": reason_template(rule, lang.code),
            "customers": customers.get(rule.id, 0),
        }
        for rule in rules.customer_rules
    ]


def tag_words(rule: Rule | CustomerRule, lang: Language) -> str:
    """The tag a rule gives, as the reader calls it; a tag named from a fact in its prefix's
    words where the labels give them (``偏好：<品类>`` for ``prefers:<category>``), else by
    its family and the fact (``状态·<订单状态>`` for ``status:<status>``)."""
    if rule.tag is not None:
        return lang.tag_label(rule.tag)
    fact = f"<{fact_name(rule.tag_from or '', lang.code)}>"
    prefixed = (label_file(lang.code).get("prefixed") or {}).get(rule.tag_prefix) or {}
    if "label" in prefixed:
        return str(prefixed["label"]).format(value=fact)
    kind = lang.labels["families"].get(rule.family or "", rule.tag_prefix.rstrip(":"))
    return f"{kind}·{fact}"


async def hits_per_rule(request: Request) -> dict[str, int]:
    return {r["rule_id"]: r["orders"] for r in await rule_hit_counts(database_of(request))}


async def customers_per_rule(request: Request) -> dict[str, int]:
    """Per customer rule, how many customers carry a tag it gave (a customer with two of one
    rule's tags, ``prefers:beauty`` and ``prefers:home-goods``, counts once). A stored rule
    tag names its rule as ``rule_id``, or as ``rule`` where the rule's id names its family
    (``shared.stored_tags.whole_rule``); a rule's tag leaves ``source`` out."""
    cursor = await database_of(request)["customers"].aggregate(
        [
            {"$unwind": "$tags"},
            {"$match": {"tags.source": {"$in": [None, TagSource.RULE.value]}}},
            {"$group": {"_id": {"id": "$tags.rule_id", "rule": "$tags.rule", "c": "$_id"}}},
            {"$group": {"_id": {"id": "$_id.id", "rule": "$_id.rule"}, "customers": {"$sum": 1}}},
        ]
    )
    counts: Counter[str] = Counter()
    for row in await cursor.to_list(None):
        rule_id = row["_id"].get("id") or row["_id"].get("rule")
        if rule_id is not None:
            counts[str(rule_id)] += int(row["customers"])
    return dict(counts)


def language_of(request: Request) -> Language:
    return language(
        pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    )


@router.get("/rules/table/{version}")
async def rule_table(
    request: Request, key: Reader, version: Annotated[str, Path(pattern=VERSION_PATTERN)]
) -> dict[str, Any]:
    """The table's rows for a recorded version (the page asks for the one now in force)."""
    stored = await tagger_of(request).rule_versions.get(version)
    if stored is None:
        raise NotFound(f"no rule version {version!r}")
    rules, lang = stored.rule_set(), language_of(request)
    rows = rule_rows(rules, lang, await hits_per_rule(request))
    customer_rows = customer_rule_rows(rules, lang, await customers_per_rule(request))
    return {"version": version, "rules": rows, "customer_rules": customer_rows}

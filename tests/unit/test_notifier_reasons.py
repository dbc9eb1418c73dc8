"""The support page's reasons: the rule sets read again at most once a refresh, and kept
while MongoDB is away once read (``services/notifier/reasons.py``)."""

from collections import defaultdict
from typing import Any

import pytest
from pydantic import ValidationError
from pymongo.errors import ServerSelectionTimeoutError

from services.notifier.reasons import RuleReasons, readable_causes, translations_of
from services.notifier.routing import Routing, load_routing
from services.notifier.settings import DEFAULT_ROUTING_FILE
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE

RULES = load_rules(DEFAULT_RULES_FILE)


class Versions:
    """``RuleVersions.active_rule_sets`` as MongoDB answers it, or does not."""

    def __init__(self) -> None:
        self.down = False
        self.reads = 0

    async def active_rule_sets(self) -> list[Any]:
        self.reads += 1
        if self.down:
            raise ServerSelectionTimeoutError("no server")
        return [RULES]


def reasons_on(versions: Versions, refresh_s: float) -> RuleReasons:
    """Reasons on ``versions`` (no database: its collections are never reached)."""
    reasons = RuleReasons(defaultdict(object), refresh_s=refresh_s)  # type: ignore[arg-type]
    reasons._versions = versions  # type: ignore[assignment]
    return reasons


async def test_before_any_read_an_outage_is_the_pages_503() -> None:
    versions = Versions()
    versions.down = True
    with pytest.raises(ServerSelectionTimeoutError):
        await reasons_on(versions, refresh_s=0).templates("en")


async def test_once_read_the_rules_serve_through_an_outage() -> None:
    versions = Versions()
    reasons = reasons_on(versions, refresh_s=0)
    before = await reasons.templates(None)
    assert before is not None

    versions.down = True
    during = await reasons.templates(None)

    assert during is not None
    assert during.reason("status", 1, ["pending"]) == before.reason("status", 1, ["pending"])
    assert versions.reads == 2


async def test_the_rules_are_read_again_only_after_the_refresh() -> None:
    versions = Versions()
    reasons = reasons_on(versions, refresh_s=3600)
    for language in (None, "en", "zh-CN"):
        assert await reasons.templates(language) is not None
    assert versions.reads == 1


def cause(
    kind: str, severity: str, why: str, tag_reasons: list[str], **more: Any
) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "severity_why": why, "tag_reasons": tag_reasons,
            "cleared_at": None, **more}  # fmt: skip


def test_a_default_severity_is_left_for_the_page_to_word_and_tag_reasons_are_translated() -> None:
    alert = {
        "causes": [
            cause("urgent", "info", "urgent: info by default", ["express shipping → urgent"]),
            cause("fraud_risk", "critical", "a new customer's large order", ["big order → risk"]),
            cause("vip", "warning", "vip: warning by default", [], cleared_at="2026-01-01"),
        ]
    }
    translations = translations_of(
        [{"name": "urgent", "reason": "express shipping → urgent"}, {"name": "vip"}],
        [{"name": "urgent", "reason": "加急快递 配送 → 紧急"}, {"name": "vip", "reason": "x"}],
    )

    readable = readable_causes(alert, translations)

    assert readable == [  # most severe first; a cleared reason is history, not shown
        {"kind": "fraud_risk", "severity": "critical", "why": "a new customer's large order",
         "tags": ["big order → risk"]},  # no translation known: the own words
        {"kind": "urgent", "severity": "info", "why": None, "tags": ["加急快递 配送 → 紧急"]},
    ]  # fmt: skip


def test_an_alert_without_causes_has_no_readable_reasons() -> None:
    assert readable_causes({"reasons": ["urgent"]}, {}) == []


def test_a_routing_rules_why_reads_in_the_readers_language_where_the_file_words_it() -> None:
    routing = load_routing(DEFAULT_ROUTING_FILE)
    alert = {"causes": [cause("urgent", "critical", "urgent order of 10,000 or more", [])]}

    [chinese] = readable_causes(alert, {}, routing.whys_in("zh-CN"))
    [english] = readable_causes(alert, {}, routing.whys_in("en"))

    assert chinese["why"] == "金额 10,000 及以上的紧急订单"
    assert english["why"] == "urgent order of 10,000 or more"  # the rule's own words
    every_rule = [rule for route in routing.routes for rule in route.severity_rules]
    assert all("zh-CN" in rule.whys for rule in every_rule)  # the default file words each


def test_a_rules_whys_are_keyed_by_a_language_the_pages_speak_and_are_one_why_long() -> None:
    routing = load_routing(DEFAULT_ROUTING_FILE)
    words = routing.why_words()
    assert words["urgent order of 10,000 or more"] == {"zh-CN": "金额 10,000 及以上的紧急订单"}
    assert len(words) == sum(len(route.severity_rules) for route in routing.routes)

    def with_whys(whys: dict[str, str]) -> dict[str, object]:
        data = routing.model_dump(mode="json")
        data["routes"][0]["severity_rules"][0]["whys"] = whys
        return data

    for whys, where in [
        ({"zh_CN": "紧急订单"}, r"whys\.zh_CN"),  # misspelt: the page would never show it
        ({"fr": "commande urgente"}, r"whys\.fr"),
        ({"zh-CN": ""}, r"whys\.zh-CN"),
        ({"zh-CN": "紧" * 201}, r"whys\.zh-CN"),
    ]:
        with pytest.raises(ValidationError, match=where):
            Routing.model_validate(with_whys(whys))
    plain = Routing.model_validate(with_whys({}))
    assert "urgent order of a VIP or high-value customer" not in plain.why_words()


def test_teams_are_named_in_the_readers_language_where_the_file_names_them() -> None:
    routing = load_routing(DEFAULT_ROUTING_FILE)

    assert routing.team_names_in("zh-CN") == {"support": "客服", "risk": "风控"}
    assert routing.team_names_in("en") == {"support": "Support", "risk": "Risk"}
    assert routing.team_names_in("fr") == {"support": "support", "risk": "risk"}  # the ids
    unknown = routing.model_dump() | {"team_names": {"billing": {"zh-CN": "财务"}}}
    with pytest.raises(ValidationError, match="team_names: no route sends to billing"):
        Routing.model_validate(unknown)
    misspelt = routing.model_dump() | {"team_names": {"risk": {"zh_CN": "风控"}}}
    with pytest.raises(ValidationError, match=r"team_names\.risk\.zh_CN"):
        Routing.model_validate(misspelt)

"""The reasons of an order's rule tags on the support page, in the reader's language.

The tagger stores a rule tag's reason as the values its rule's template took
(``shared/stored_tags.py``); the words are its rule set's, and every rule set once in force is
recorded in ``rule_versions``. The notifier reads them as the tagger does, so the page says
"express shipping → urgent" (or "快递配送 → 紧急"), not "rule priority.fast-shipping version 1:
express". They change only when a rule version is put in force: read at most once a minute.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.now_and_then import REFRESH_S, NowAndThen
from services.notifier.routing import SEVERITY_RANK, default_why
from services.tagger.builtin_labels import reason_labels
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.reasons import ReasonTemplates, TranslatedReasons
from shared.errors import MONGO_OUTAGES
from shared.events import AlertKind, Severity

log = structlog.get_logger("notifier")


class RuleReasons:
    """The reason templates of every rule set once in force, read from the tagger's records."""

    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], refresh_s: float = REFRESH_S
    ) -> None:
        self._versions = RuleVersions(database)
        self._templates: ReasonTemplates | None = None
        self._reads = NowAndThen(self._read, refresh_s)

    async def templates(self, language: str | None) -> ReasonTemplates | TranslatedReasons | None:
        """The templates in ``language`` (the rules' own words where they give none in it);
        None while no rule set was ever put in force (the tagger never ran on this store)."""
        await self._reads.fresh_enough()
        if self._templates is None:
            return None
        return self._templates.in_language(language, reason_labels(language))

    async def _read(self) -> None:
        try:
            in_force = await self._versions.active_rule_sets()  # the one in force last
        except MONGO_OUTAGES as error:
            if self._templates is None:
                raise  # the page answers 503, as for any read while MongoDB is away
            # the ones read before serve until the next try
            log.warning("rule_reasons_not_refreshed", error=repr(error))
            return
        if in_force:
            self._templates = ReasonTemplates(in_force[-1], earlier=in_force[:-1])


def translations_of(
    own_words: Sequence[Mapping[str, Any]], read: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Each tag reason as the tagger's events carry it (the rules' own words) and as the reader
    reads it: the same order's tags rendered twice (``readable_tags``), matched by tag name."""
    in_reader: dict[str, str] = {tag["name"]: tag["reason"] for tag in read if tag.get("reason")}
    return {
        tag["reason"]: in_reader[tag["name"]]
        for tag in own_words
        if tag.get("reason") and tag["name"] in in_reader
    }


def readable_causes(
    alert: Mapping[str, Any],
    translations: Mapping[str, str],
    whys: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The alert's holding reasons, most severe first, for the page to word in the reader's
    language: kind and severity as names (the page has their labels), the routing rule's own
    ``why`` (None for the route's default severity, which the page words itself) and the tag
    reasons in the reader's language where the order's tags give them; ``whys`` words a
    rule's ``why`` in the reader's language (``Routing.whys_in``). The stored ``reasons``
    ("urgent: info by default: express shipping → urgent") stay as they are for the channels."""
    holding = [cause for cause in alert.get("causes") or [] if cause.get("cleared_at") is None]
    holding.sort(key=lambda cause: -SEVERITY_RANK[Severity(cause["severity"])])
    return [
        {
            "kind": cause["kind"],
            "severity": cause["severity"],
            "why": None
            if cause["severity_why"]
            == default_why(AlertKind(cause["kind"]), Severity(cause["severity"]))
            else (whys or {}).get(cause["severity_why"], cause["severity_why"]),
            "tags": [translations.get(reason, reason) for reason in cause["tag_reasons"]],
        }
        for cause in holding
    ]

"""Alerts on the console's order and customer pages, in the parts the support page words them
with: the notifier's readable causes (``services/notifier/reasons.py``), each cause's tag
reasons in the reader's language. An alert quotes its tags' reasons in the rules' own words;
the order's tags rendered in those words and in the reader's give the translation. The page
words the kind and severity (``OT.alertCause``).

A routing rule's ``why`` is stored with the cause as the routing file writes it; the console's
process does not load that file, so its words in the reader's language are the ones the
notifier recorded (``services/notifier/why_words.py``), else the ``why`` itself."""

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.notifier.reasons import readable_causes, translations_of
from services.notifier.why_words import why_words_in
from services.tagger.builtin_labels import reason_labels
from services.tagger.rules.reasons import ReasonTemplates
from shared.stored_tags import readable_tags


async def with_causes(
    database: AsyncDatabase[dict[str, Any]],
    alerts: list[dict[str, Any]],
    templates: ReasonTemplates,
    language: str,
) -> list[dict[str, Any]]:
    """The alerts, each with its ``causes`` in the reader's language (one read of the orders)."""
    in_reader = templates.in_language(language, reason_labels(language))
    translations: dict[str, dict[str, str]] = {}
    order_nos = sorted({alert["order_no"] for alert in alerts})
    async for order in database["orders"].find({"order_no": {"$in": order_nos}}, {"_id": 0}):
        translations[order["order_no"]] = translations_of(
            readable_tags(order, templates), readable_tags(order, in_reader)
        )
    whys = await why_words_in(
        database,
        (cause["severity_why"] for alert in alerts for cause in alert.get("causes") or []),
        language,
    )
    return [
        {**alert, "causes": _causes(alert, translations.get(alert["order_no"], {}), whys)}
        for alert in alerts
    ]


def _causes(
    alert: dict[str, Any], translations: Mapping[str, str], whys: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The causes that hold, most severe first; none holds once the alert is resolved: then the
    ones it was raised for."""
    return readable_causes(alert, translations, whys) or readable_causes(
        {**alert, "causes": [{**c, "cleared_at": None} for c in alert.get("causes") or []]},
        translations,
        whys,
    )

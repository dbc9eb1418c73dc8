"""The display labels the default taxonomy ships with (``services/console/labels/*.yaml``, the one
place labels live): given to catalog tags that have none of their own when the catalog is seeded,
and to the fact values rule reasons show (``express`` → 快递) in the reader's language."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.tagger.rules.reasons import ReasonLabels
from services.tagger.rules.schema import LANGUAGES, CatalogTag

LABEL_FILES = Path(__file__).parents[1] / "console" / "labels"
# which group of a label file names the values of a fact
FACT_VALUE_GROUPS = {
    "status": "statuses",
    "region": "regions",
    "shipping.method": "shipping_methods",
    "payment.method": "payment_methods",
    "order_type": "order_types",
}


@cache
def label_file(code: str) -> dict[str, Any]:
    """One language's label file as read (groups of machine name → label)."""
    document: dict[str, Any] = yaml.safe_load(
        (LABEL_FILES / f"{code}.yaml").read_text(encoding="utf-8")
    )
    return document


@cache
def builtin_tag_labels() -> dict[str, dict[str, str]]:
    """Per tag name, its label per language."""
    labels: dict[str, dict[str, str]] = {}
    for code in LANGUAGES:
        for name, label in (label_file(code).get("tags") or {}).items():
            labels.setdefault(name, {})[code] = label
    return labels


def with_builtin_labels(tags: list[CatalogTag]) -> list[CatalogTag]:
    """The tags, each with the built-in labels of the languages it does not label itself."""
    builtin = builtin_tag_labels()
    return [
        tag.model_copy(update={"labels": {**builtin.get(tag.name, {}), **tag.labels}})
        for tag in tags
    ]


@cache
def reason_labels(code: str | None) -> ReasonLabels | None:
    """What a reason in language ``code`` shows for fact values, tags and families (None for
    a language without a label file: reasons then read as stored)."""
    if code not in LANGUAGES:
        return None
    document = label_file(code)
    tags = dict(document.get("tags") or {})
    for prefix, group in (("status:", "statuses"), ("region:", "regions")):
        tags.update({prefix + name: label for name, label in (document.get(group) or {}).items()})
    return ReasonLabels(
        values={fact: document.get(group) or {} for fact, group in FACT_VALUE_GROUPS.items()},
        tags=tags,
        families=document.get("families") or {},
        default_reason=document.get("default_reason"),
    )

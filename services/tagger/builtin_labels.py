"""The display labels the default taxonomy ships with (``services/console/labels/*.yaml``, the one
place labels live): given to catalog tags that have none of their own when the catalog is seeded,
and to the fact values rule reasons show (``express`` → 快递) in the reader's language."""

from collections.abc import Mapping
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
    "channel": "channels",
    "categories": "categories",  # the category rule's {value}
    "category": "categories",  # a customer rule's, with each: category
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


@cache
def former_tag_labels() -> dict[str, dict[str, list[str]]]:
    """Per tag name and language, the built-in labels it had before (``former_tags``)."""
    former: dict[str, dict[str, list[str]]] = {}
    for code in LANGUAGES:
        for name, labels in (label_file(code).get("former_tags") or {}).items():
            former.setdefault(name, {})[code] = [str(label) for label in labels]
    return former


def tag_label(
    document: dict[str, Any], name: str, named: Mapping[str, Mapping[str, str]] | None = None
) -> str | None:
    """A tag's built-in label in one language's label file: its own (``tags``), else, for a
    tag named prefix + value (``category:apparel``, ``prefers:beauty``), the value's label
    from the prefix's group in the prefix's words (``偏好：{value}``), an unlabelled value
    as itself. ``named``: what the data says of some tags' values (``product:earbuds-06``:
    the product's name and SKU on its orders), in the prefix's ``named`` words (``偏好商品：
    {name} ({sku})``). None: no built-in label (the name is shown)."""
    own = (document.get("tags") or {}).get(name)
    if own is not None:
        return str(own)
    for prefix, how in (document.get("prefixed") or {}).items():
        if name.startswith(prefix) and len(name) > len(prefix):
            value = name[len(prefix) :]
            shown = (document.get(how.get("group", "")) or {}).get(value, value)
            fields = (named or {}).get(name)
            if fields and "named" in how:
                return str(how["named"]).format(value=shown, **fields)
            return str(how.get("label", "{value}")).format(value=shown)
    return None


def builtin_labels_of(name: str) -> dict[str, str]:
    """A tag's built-in label per language (none for a tag the label files do not name)."""
    labels = {}
    for code in LANGUAGES:
        label = tag_label(label_file(code), name)
        if label is not None:
            labels[code] = label
    return labels


def with_builtin_labels(tags: list[CatalogTag]) -> list[CatalogTag]:
    """The tags, each with the built-in labels of the languages it does not label itself."""
    return [
        tag.model_copy(update={"labels": {**builtin_labels_of(tag.name), **tag.labels}})
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
    for prefix, how in (document.get("prefixed") or {}).items():
        for value in document.get(how.get("group", "")) or {}:
            tags[prefix + value] = tag_label(document, prefix + value) or value
    return ReasonLabels(
        values={fact: document.get(group) or {} for fact, group in FACT_VALUE_GROUPS.items()},
        tags=tags,
        families=document.get("families") or {},
        default_reason=document.get("default_reason"),
    )

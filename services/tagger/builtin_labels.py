"""The display labels the default taxonomy ships with (``services/console/labels/*.yaml``),
given to catalog tags that have none of their own when the catalog is seeded."""

from functools import cache
from pathlib import Path

import yaml

from services.tagger.rules.schema import LANGUAGES, CatalogTag

LABEL_FILES = Path(__file__).parents[1] / "console" / "labels"


@cache
def builtin_tag_labels() -> dict[str, dict[str, str]]:
    """Per tag name, its label per language."""
    labels: dict[str, dict[str, str]] = {}
    for code in LANGUAGES:
        document = yaml.safe_load((LABEL_FILES / f"{code}.yaml").read_text(encoding="utf-8"))
        for name, label in (document.get("tags") or {}).items():
            labels.setdefault(name, {})[code] = label
    return labels


def with_builtin_labels(tags: list[CatalogTag]) -> list[CatalogTag]:
    """The tags, each with the built-in labels of the languages it does not label itself."""
    builtin = builtin_tag_labels()
    return [
        tag.model_copy(update={"labels": {**builtin.get(tag.name, {}), **tag.labels}})
        for tag in tags
    ]

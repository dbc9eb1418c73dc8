"""Languages of the console: message catalogs and display labels per language (zh-CN first).

The language follows the browser's Accept-Language until the person picks one (a cookie).
"""

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.tagger.builtin_labels import tag_label

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "ordertag_lang"
_HERE = Path(__file__).parent


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language when valid, else the browser's first supported one, else zh-CN."""
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-quality + position * 1e-6, tag.strip().lower()))
    for _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def plural_form(code: str, count: object) -> str:
    """A count's CLDR plural category, as ``Intl.PluralRules`` gives it on the pages: English
    says "1 order" but "2 orders" (``one`` / ``other``); Chinese has the one form."""
    try:
        return "one" if code == "en" and Decimal(str(count)) == 1 else "other"
    except InvalidOperation:
        return "other"


def tag_options(names: Iterable[str], label: Callable[[str], str]) -> dict[str, str]:
    """Tags as pickers and filters list them: by their labels, the names staff know them by;
    a tag's name too where another listed tag reads the same, unless it is its label already
    (``OT.tagOptions``)."""
    labels = {name: label(name) for name in names}
    seen = Counter(labels.values())
    return {
        name: text if seen[text] == 1 or text == name else f"{text} ({name})"
        for name, text in labels.items()
    }


@dataclass(frozen=True)
class Language:
    code: str
    messages: dict[str, str]
    labels: dict[str, dict[str, str]]

    def t(self, key: str, **values: Any) -> str:
        """The message for ``key`` (the key itself when missing, so a gap shows, not breaks);
        with a count ``n``, its plural form's where the language has one (``key_one``)."""
        if "n" in values:
            form = f"{key}_{plural_form(self.code, values['n'])}"
            key = form if form in self.messages else key
        text = self.messages.get(key, key)
        return text.format(**values) if values else text

    def word(self, prefix: str, value: str) -> str:
        """A value's word from the messages (``alerts.kind.`` + ``fraud_risk``: 欺诈风险), the
        value itself when there is none."""
        return self.messages.get(prefix + value, value)

    def tag_label(self, name: str, named: Mapping[str, Mapping[str, str]] | None = None) -> str:
        """A tag's display label: the built-in one (``tags``, or a prefixed tag's value by its
        group: ``category:beauty`` 美妆, ``prefers:beauty`` 偏好：美妆; with ``named``, a
        product's by its name: ``product:earbuds-06`` 偏好商品：无线耳机 (EARBUDS-06)), else the
        name itself (custom tags are often named in Chinese already)."""
        return tag_label(self.labels, name, named) or name

    def value_label(self, group: str, value: str | None) -> str:
        """A value by its label in one group (``categories``, ``channels`` ...), else as it is."""
        if value is None:
            return ""
        return str((self.labels.get(group) or {}).get(value, value))


@cache
def language(code: str) -> Language:
    messages = json.loads((_HERE / "i18n" / f"{code}.json").read_text(encoding="utf-8"))
    labels = yaml.safe_load((_HERE / "labels" / f"{code}.yaml").read_text(encoding="utf-8"))
    return Language(code, messages, labels)

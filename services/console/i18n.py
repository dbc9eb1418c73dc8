"""Languages of the console: message catalogs and display labels per language (zh-CN first).

The language follows the browser's Accept-Language until the person picks one (a cookie).
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "ordertag_lang"
_HERE = Path(__file__).parent
PREFIXED = {"status:": "statuses", "region:": "regions"}


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


@dataclass(frozen=True)
class Language:
    code: str
    messages: dict[str, str]
    labels: dict[str, dict[str, str]]

    def t(self, key: str, **values: Any) -> str:
        """The message for ``key`` (the key itself when missing, so a gap shows, not breaks)."""
        text = self.messages.get(key, key)
        return text.format(**values) if values else text

    def tag_label(self, name: str) -> str:
        """A tag's display label: the catalog's, else ``status:``/``region:`` values, else the
        name itself (custom tags are often named in Chinese already)."""
        if name in self.labels["tags"]:
            return self.labels["tags"][name]
        for prefix, group in PREFIXED.items():
            if name.startswith(prefix):
                return self.labels[group].get(name[len(prefix) :], name)
        if name.startswith("category:"):
            return name[len("category:") :]
        return name


@cache
def language(code: str) -> Language:
    messages = json.loads((_HERE / "i18n" / f"{code}.json").read_text(encoding="utf-8"))
    labels = yaml.safe_load((_HERE / "labels" / f"{code}.yaml").read_text(encoding="utf-8"))
    return Language(code, messages, labels)

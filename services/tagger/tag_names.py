"""Tag names and labels: NFKC at the boundary, and near-duplicates in the catalog.

Two spellings are near-duplicates when they are equal once case, width (全角/半角), spacing and
separators and traditional/simplified characters are set aside, or when one is the other plus a
trailing 订单 / 客户 ("VIP客戶" ≈ "vip"). Only the trailing word of one side is dropped, so
新客户 and 新订单 stay two tags. Pure, apart from OpenCC's dictionaries (loaded once).
"""

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

import opencc

from services.tagger.rules.schema import CatalogTag

TRAILING_WORDS = ("订单", "客户")
# spacing and the separators people use between words: - _ . : · ・ / and all whitespace
_SEPARATORS = re.compile(r"[\s\-_.:·・/]+")


def nfkc(text: str) -> str:
    """The NFKC form: full-width letters and digits become ASCII, compatibility forms go."""
    return unicodedata.normalize("NFKC", text)


@cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65_536)  # the catalog's spellings come back on every check
def comparable(text: str) -> str:
    """The form two near-equal spellings share: NFKC, simplified characters, case folded,
    no spaces or separators."""
    folded = _to_simplified().convert(nfkc(text)).casefold()
    return _SEPARATORS.sub("", folded)


def stem(key: str) -> str:
    """A comparable form without its trailing 订单 / 客户 (unchanged if nothing would be left)."""
    for word in TRAILING_WORDS:
        if key.endswith(word) and len(key) > len(word):
            return key[: -len(word)]
    return key


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """An existing tag that a new spelling nearly equals, and which of its spellings."""

    tag: str
    spelling: str  # the existing tag's name or label it matched
    where: str  # "name" or "label zh-CN" / "label en"
    given: str  # the new spelling that matched it

    def __str__(self) -> str:
        shown = "" if self.where == "name" else f" ({self.where} {self.spelling!r})"
        return f"{self.given!r} nearly equals the existing tag {self.tag!r}{shown}"


def spellings(tag: CatalogTag) -> list[tuple[str, str]]:
    """A tag's name and labels as (where, text)."""
    return [("name", tag.name)] + [(f"label {code}", text) for code, text in tag.labels.items()]


@dataclass(frozen=True, slots=True)
class _Spelling:
    tag: str
    where: str
    text: str
    key: str
    stem: str


def _spelled(tag: str, where: str, text: str) -> _Spelling:
    key = comparable(text)
    return _Spelling(tag, where, text, key, stem(key))


class _Index:
    """Every spelling of the catalog by its comparable form and by its stem: a lookup per new
    spelling instead of a comparison with each tag."""

    def __init__(self, catalog: Mapping[str, CatalogTag]) -> None:
        self.by_key: dict[str, list[_Spelling]] = {}
        self.by_stem: dict[str, list[_Spelling]] = {}
        for name, tag in sorted(catalog.items()):
            for where, text in spellings(tag):
                spelled = _spelled(name, where, text)
                self.by_key.setdefault(spelled.key, []).append(spelled)
                if spelled.stem != spelled.key:
                    self.by_stem.setdefault(spelled.stem, []).append(spelled)

    def matches(self, spelled: _Spelling) -> list[_Spelling]:
        """Equal keys, or one side's stem equal to the other's whole key."""
        found = list(self.by_key.get(spelled.key, []))
        if spelled.stem != spelled.key:
            found += self.by_key.get(spelled.stem, [])
        found += self.by_stem.get(spelled.key, [])
        return found


def near_duplicates(
    given: Iterable[str], catalog: Mapping[str, CatalogTag], exclude: Iterable[str] = ()
) -> list[NearDuplicate]:
    """The catalog tags (other than ``exclude``) one of ``given`` nearly equals, once each, in
    name order."""
    skipped = set(exclude)
    index = _Index(catalog)
    found: dict[str, NearDuplicate] = {}
    for text in dict.fromkeys(given):
        for match in index.matches(_spelled("", "", text)):
            if match.tag not in skipped:
                found.setdefault(match.tag, NearDuplicate(match.tag, match.text, match.where, text))
    return [found[name] for name in sorted(found)]


@dataclass(frozen=True, slots=True)
class LikelyDuplicates:
    """Two catalog tags the review should look at: merge one into the other, or keep both."""

    tags: tuple[str, str]
    why: str


def likely_duplicates(catalog: Mapping[str, CatalogTag]) -> list[LikelyDuplicates]:
    """Pairs of catalog tags whose names or labels nearly equal each other, once per pair."""
    index = _Index(catalog)
    pairs: dict[tuple[str, str], str] = {}
    for name, tag in sorted(catalog.items()):
        for where, text in spellings(tag):
            for match in index.matches(_spelled(name, where, text)):
                if match.tag == name:
                    continue
                pair = (min(name, match.tag), max(name, match.tag))
                pairs.setdefault(
                    pair, f"{name} {where} {text!r} ≈ {match.tag} {match.where} {match.text!r}"
                )
    return [LikelyDuplicates(pair, why) for pair, why in sorted(pairs.items())]

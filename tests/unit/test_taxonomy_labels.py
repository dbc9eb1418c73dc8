"""The default taxonomy's labels: no two tags a reader could take for one another, in Chinese
and in English, and each rule's Chinese reason ends with the label of the tag it gives
(客户 X 的首单 → 新客户)."""

import itertools

import pytest

from services.console.i18n import language
from services.tagger.rule_tags import settable_tags
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tag_names import comparable

# a trailing word for the customers a tag is about: 新客, 新客户 and 新 name the same ones
CUSTOMER_WORDS = ("客户", "户", "客")
# what is left of a label that a reader takes for another (高端客户 for 高价值客户; 大客户, a key
# account, too; 回头客 for 老客户)
SAME_MEANING = {"高端": "高价值", "大": "高价值", "回头": "老"}


def read_as(label: str) -> str:
    """What a reader takes a label for: its comparable form (case, width, spacing and
    separators, traditional characters set aside), without a trailing word for customers,
    what is left of one meaning as one."""
    key = comparable(label)
    for word in CUSTOMER_WORDS:
        if key.endswith(word) and len(key) > len(word):
            key = key[: -len(word)]
            break
    return SAME_MEANING.get(key, key)


# English: a trailing word for customers, and what a reader takes for another (a big customer
# is a key account, a high-value one; a repeat customer a returning one)
EN_CUSTOMER_WORDS = (" customers", " customer")
EN_SAME_MEANING = {"big": "high value", "repeat": "returning"}


def read_as_en(label: str, families: set[str]) -> str:
    """What an English reader takes a label for: lower case, hyphens as spaces, a family's
    name before a colon set aside (``Lifecycle: new`` is new), no trailing word for
    customers, what is left of one meaning as one."""
    key = " ".join(label.lower().replace("-", " ").split())
    family, colon, rest = key.partition(": ")
    if colon and family in families:
        key = rest
    for word in EN_CUSTOMER_WORDS:
        if key.endswith(word) and len(key) > len(word):
            key = key[: -len(word)]
            break
    return EN_SAME_MEANING.get(key, key)


def default_tag_labels(code: str = "zh-CN") -> dict[str, str]:
    """Every tag the default rules give by name or from a known value (status, region, each
    category's preference and category tag), by its label in language ``code``."""
    rules = load_rules(DEFAULT_RULES_FILE)
    lang = language(code)
    names = {tag.name for tag in rules.tags} | {tag.name for tag in settable_tags(rules, [])}
    names |= {
        f"{prefix}{c}" for prefix in ("category:", "prefers:") for c in lang.labels["categories"]
    }
    return {name: lang.tag_label(name) for name in sorted(names)}


def test_no_two_default_tags_read_alike_in_chinese() -> None:
    labels = default_tag_labels()
    assert len(labels) > 40  # the whole taxonomy, not a few tags

    alike = [
        (a, labels[a], b, labels[b])
        for a, b in itertools.combinations(labels, 2)
        if read_as(labels[a]) == read_as(labels[b])
    ]

    assert alike == []


def test_the_check_finds_the_pairs_a_reader_confuses() -> None:
    assert read_as("新客") == read_as("新客户") == read_as("新 客戶")
    assert read_as("高端客户") == read_as("高价值客户")
    assert read_as("回头客") == read_as("老客户")
    assert read_as("大客户") == read_as("高价值客户")
    assert read_as("新订单") != read_as("新客户")  # an order and a customer: two things
    assert read_as("复购订单") != read_as("复购客户")


def test_no_two_default_tags_read_alike_in_english() -> None:
    labels = default_tag_labels("en")
    families = {str(label).lower() for label in language("en").labels["families"].values()}
    assert len(labels) > 40

    alike = [
        (a, labels[a], b, labels[b])
        for a, b in itertools.combinations(labels, 2)
        if read_as_en(labels[a], families) == read_as_en(labels[b], families)
    ]

    assert alike == []


def test_the_english_check_finds_the_pairs_a_reader_confuses() -> None:
    families = {"lifecycle", "risk"}
    assert read_as_en("Lifecycle: new", families) == read_as_en("New customer", families)
    assert read_as_en("Lifecycle: returning", families) == read_as_en(
        "Returning customer", families
    )
    assert read_as_en("Big customer", families) == read_as_en("High-value customer", families)
    assert read_as_en("High value", families) == read_as_en("high-value customers", families)
    assert read_as_en("Prefers: beauty", families) != read_as_en("Beauty", families)
    assert read_as_en("Repeat customer", families) == read_as_en("Returning customer", families)
    assert read_as_en("Repeat order", families) != read_as_en("Multi-order customer", families)


@pytest.mark.parametrize(("code", "at_least"), [("zh-CN", 21), ("en", 5)])
def test_each_rules_translated_reason_ends_with_the_label_of_its_tag(
    code: str, at_least: int
) -> None:
    """Every rule's Chinese words, and its English ones where they differ from its own (its tag
    was relabelled), end with the tag's label in the language, as the badge beside them reads
    (English in any case)."""
    rules = load_rules(DEFAULT_RULES_FILE)
    lang = language(code)
    given = [
        (rule.id, rule.tag, rule.reasons[code])
        for rule in [*rules.rules, *rules.customer_rules]
        if rule.tag is not None and code in rule.reasons
    ]
    assert len(given) >= at_least

    wrong = [
        (rule_id, reason, lang.tag_label(tag))
        for rule_id, tag, reason in given
        if reason.rpartition("→")[2].strip().lower() != lang.tag_label(tag).lower()
    ]

    assert wrong == []

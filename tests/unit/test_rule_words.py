"""A rule version's words are fixed once it was in force (``rules.reasons.keep_words``): stored
reasons are the values its template took, rendered again with its words."""

import os
import time
from pathlib import Path

import pytest

from services.tagger.rules.book import RuleBook
from services.tagger.rules.reasons import keep_words, reworded
from services.tagger.rules.schema import RuleFileError, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE

TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
URGENT = '    reason: "{shipping.method} shipping → urgent"'
RETURNING = "{orders_total} orders → returning"


def _edited(*replacements: tuple[str, str]) -> str:
    text = TEXT
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return text


def test_a_rule_reworded_under_its_version_is_refused_naming_the_rule_and_the_words() -> None:
    before = parse_rules(TEXT, "before")
    reworded_urgent = _edited((URGENT, '    reason: "sent {shipping.method} → urgent"'))
    problems = reworded(parse_rules(reworded_urgent, "after"), [before])

    [(where, problem)] = problems
    assert where == "rule priority.fast-shipping, field reason"
    assert "{shipping.method} shipping → urgent" in problem
    assert "new version (2)" in problem
    with pytest.raises(RuleFileError) as refused:
        keep_words(parse_rules(reworded_urgent, "after"), [before], "rules.yaml")
    assert str(refused.value).startswith("rules.yaml: rule ")


def test_a_customer_rule_reworded_under_its_version_is_refused_too() -> None:
    before = parse_rules(TEXT, "before")
    after = parse_rules(_edited((RETURNING, "returning after {orders_total} orders")), "after")
    [(where, _)] = reworded(after, [before])
    assert where == "rule lifecycle.returning, field reason"


def test_new_words_under_a_new_version_other_rules_and_the_same_set_pass() -> None:
    before = parse_rules(TEXT, "before")
    bumped = _edited(
        (
            "  - id: lifecycle.returning\n    version: 1",
            "  - id: lifecycle.returning\n    version: 2",
        ),
        (RETURNING, "returning after {orders_total} orders"),
    )
    assert reworded(parse_rules(bumped, "after"), [before]) == []
    assert reworded(before, [before]) == []
    assert reworded(before, []) == []
    # where two sets once in force gave one version other words (before this check), the later's
    # words hold, as they do for reading (``ReasonTemplates``)
    later = parse_rules(_edited((RETURNING, "returning after {orders_total} orders")), "later")
    assert reworded(later, [before, later]) == []
    assert reworded(before, [before, later]) != []


def test_a_rule_file_edit_that_rewords_a_version_once_in_force_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(TEXT, encoding="utf-8")
    book = RuleBook(path)
    book.earlier = (book.current,)
    kept = book.version

    path.write_text(_edited((RETURNING, "returning after {orders_total} orders")), "utf-8")
    later = time.time() + 5  # a new modification time, whatever the file system's resolution
    os.utime(path, (later, later))
    assert book.reload_if_changed() is False
    assert book.version == kept


def test_a_rule_file_put_back_to_a_set_once_in_force_is_loaded(tmp_path: Path) -> None:
    """Two sets in force before this check may disagree on a version's words: a file put
    back to either is not refused (its tags were given those words)."""
    path = tmp_path / "rules.yaml"
    later_text = _edited((RETURNING, "returning after {orders_total} orders"))
    path.write_text(later_text, encoding="utf-8")
    book = RuleBook(path)
    book.earlier = (parse_rules(TEXT, "before"), book.current)

    path.write_text(TEXT, "utf-8")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert book.reload_if_changed() is True


def test_a_value_shown_from_another_fact_under_the_same_version_is_refused() -> None:
    """``{value}`` shows the rule's ``tag_from``: the same words from another fact are other
    words."""
    before = parse_rules(TEXT, "before")
    moved = parse_rules(
        _edited(("    tag_from: region\n", "    tag_from: shipping.province\n")), "moved"
    )
    [(where, problem)] = reworded(moved, [before])
    assert where == "rule region, field reason"
    assert "showing region as its value" in problem

"""A customer's tags and history as stored (compact) and as read back (in full)."""

from datetime import UTC, datetime, timedelta

import pytest

from services.tagger.customers.model import TagChange, history_entries
from services.tagger.customers.segment_sizes import _membership
from services.tagger.customers.segments import TagFilter
from services.tagger.customers.stored import (
    applied_tags,
    readable_entry,
    readable_tag,
    stored_customer_tag,
    stored_entry,
)
from services.tagger.rules.book import RuleBook
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared import stored_tags
from shared.events import AppliedTag, TagSource

AT = datetime(2026, 11, 26, 8, 0, 0, 123000, tzinfo=UTC)
TEMPLATES = ReasonTemplates(RuleBook(DEFAULT_RULES_FILE).current, customer=True)
RETURNING = AppliedTag(name="lifecycle:returning", family="lifecycle", source=TagSource.RULE,
                       rule_id="lifecycle.returning", rule_version=1,
                       reason="3 orders → returning", at=AT)  # fmt: skip
BY_HAND = AppliedTag(name="vip", source=TagSource.MANUAL, by="王小明", reason="老客户", at=AT)


@pytest.fixture
def whole_rule_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The form the release before wrote, which this one reads: a rule tag's family, rule id
    and rule version each stored (``WRITE_WHOLE_RULE_SHORT`` off)."""
    monkeypatch.setattr(stored_tags, "WRITE_WHOLE_RULE_SHORT", False)
    monkeypatch.setattr(stored_tags, "_tag_forms", {})


@pytest.mark.usefixtures("whole_rule_in_full")
def test_a_rule_tag_is_stored_with_its_values_not_its_sentence_and_read_back_whole() -> None:
    stored = stored_customer_tag(RETURNING, TEMPLATES)
    assert stored == {"name": "lifecycle:returning", "family": "lifecycle",
                      "rule_id": "lifecycle.returning", "rule_version": 1, "args": "3",
                      "at": AT}  # fmt: skip
    assert applied_tags([stored], TEMPLATES) == [RETURNING]
    assert readable_tag(stored, TEMPLATES) == RETURNING.model_dump(mode="json")


def test_a_manual_tag_keeps_its_words_and_names_its_source_and_author() -> None:
    stored = stored_customer_tag(BY_HAND, TEMPLATES)
    assert stored == {"name": "vip", "source": "manual", "by": "王小明", "reason": "老客户",
                      "at": AT}  # fmt: skip
    assert readable_tag(stored, TEMPLATES) == BY_HAND.model_dump(mode="json")


def test_a_tag_stored_in_the_earlier_full_form_reads_as_it_did() -> None:
    earlier = RETURNING.model_dump(mode="json")
    assert applied_tags([earlier], TEMPLATES) == [RETURNING]
    assert readable_tag(earlier, TEMPLATES) == earlier


def test_a_reason_its_rule_version_no_longer_renders_names_the_rule_and_values() -> None:
    stored = {**stored_customer_tag(RETURNING, TEMPLATES), "rule_version": 9}
    assert readable_tag(stored, TEMPLATES)["reason"] == "rule lifecycle.returning version 9: 3"


@pytest.mark.usefixtures("whole_rule_in_full")
def test_history_entries_keep_only_what_they_have_and_read_back_in_full() -> None:
    change = TagChange(tags=[RETURNING], added=[RETURNING], removed=[BY_HAND])
    rows = history_entries(change, AT)
    stored = [stored_entry(row, TEMPLATES) for row in rows]
    assert stored == [
        {"at": AT, "tag": "lifecycle:returning",
         "rule_id": "lifecycle.returning", "rule_version": 1, "args": "3"},
        {"at": AT, "change": "removed", "tag": "vip", "source": "manual", "reason": "老客户"},
    ]  # fmt: skip
    assert [readable_entry(entry, TEMPLATES) for entry in stored] == rows
    assert [readable_entry(row, TEMPLATES) for row in rows] == rows  # the earlier full form
    with_sentence = [stored_entry(row, None) for row in rows]  # as written before
    assert with_sentence[0]["reason"] == "3 orders → returning"
    assert [readable_entry(entry, TEMPLATES) for entry in with_sentence] == rows


def test_a_history_entry_reads_the_same_after_its_rule_version_left_the_rules() -> None:
    """Entries are kept for audit: an entry of a rule version since replaced reads with that
    version's words, which the rule sets once in force keep (``keep_words`` refuses a set
    that rewords a recorded version); an entry written before keeps its sentence."""
    [entry] = history_entries(TagChange([RETURNING], [RETURNING], []), AT)
    stored = stored_entry(entry, TEMPLATES)
    edited = parse_rules(
        DEFAULT_RULES_FILE.read_text(encoding="utf-8")
        .replace(
            "  - id: lifecycle.returning\n    version: 1",
            "  - id: lifecycle.returning\n    version: 2",
        )
        .replace("{orders_total} orders → returning", "returning after {orders_total} orders"),
        "edited",
    )
    later = ReasonTemplates(edited, customer=True, earlier=[RuleBook(DEFAULT_RULES_FILE).current])
    assert readable_entry(stored, later)["reason"] == "3 orders → returning"
    # a version whose set no longer parses: the rule, its version and the values
    assert readable_entry({**stored, "rule_version": 9}, TEMPLATES)["reason"] == (
        "rule lifecycle.returning version 9: 3"
    )
    written_before = {**stored_entry(entry, None), "rule_version": 9}
    assert readable_entry(written_before, TEMPLATES)["reason"] == "3 orders → returning"


def test_a_tag_of_a_rule_version_once_in_force_reads_as_given() -> None:
    stored = stored_customer_tag(RETURNING, TEMPLATES)
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    edited = parse_rules(
        text.replace(
            "  - id: lifecycle.returning\n    version: 1",
            "  - id: lifecycle.returning\n    version: 2",
        ).replace("{orders_total} orders → returning", "returning after {orders_total} orders"),
        "edited",
    )
    before = RuleBook(DEFAULT_RULES_FILE).current
    now = ReasonTemplates(edited, customer=True)
    with_earlier = ReasonTemplates(edited, customer=True, earlier=[before])

    assert readable_tag(stored, with_earlier)["reason"] == "3 orders → returning"
    assert readable_tag(stored, now)["reason"] == "rule lifecycle.returning version 1: 3"
    assert with_earlier.reason("lifecycle.returning", 2, ["3"]) == "returning after 3 orders"


def test_without_templates_a_reason_is_stored_as_its_sentence() -> None:
    stored = stored_customer_tag(RETURNING, None)
    assert stored["reason"] == "3 orders → returning"
    assert "args" not in stored
    assert applied_tags([stored], None) == [RETURNING]


def test_an_addition_is_stored_without_its_change_and_reads_as_one_stored_with_it() -> None:
    """Entries written before this release hold ``change: added``: both forms read the same,
    by the history and by the segment's day-by-day counts."""
    rows = history_entries(TagChange([RETURNING], [RETURNING], []), AT)
    [added] = [stored_entry(row, TEMPLATES) for row in rows]
    assert "change" not in added
    earlier = {**added, "change": "added"}

    assert readable_entry(added, TEMPLATES) == readable_entry(earlier, TEMPLATES)
    assert readable_entry(added, TEMPLATES)["change"] == "added"
    which = TagFilter(all_tags=["lifecycle:returning"])
    customer = {"tag_names": ["lifecycle:returning"], "first_order_at": AT - timedelta(days=30)}
    before = [AT - timedelta(days=1)]  # the day before the tag came: not a member then
    assert _membership({**customer, "history": [added]}, which, before) == [-1]
    assert _membership({**customer, "history": [earlier]}, which, before) == [-1]


def test_a_rule_tag_names_its_family_by_its_rule_and_leaves_out_its_first_version() -> None:
    second = RETURNING.model_copy(update={"rule_version": 2, "reason": "returning: 3"})
    other_family = RETURNING.model_copy(update={"family": "segment"})
    stored = [stored_customer_tag(tag, TEMPLATES) for tag in (RETURNING, second, other_family)]

    assert stored[0] == {"name": "lifecycle:returning", "rule": "lifecycle.returning",
                         "args": "3", "at": AT}  # fmt: skip
    assert stored[1]["rule_version"] == 2
    assert (stored[2]["family"], stored[2]["rule_id"]) == ("segment", "lifecycle.returning")
    assert applied_tags(stored, TEMPLATES) == [RETURNING, second, other_family]
    assert [readable_tag(s, TEMPLATES) for s in stored] == [
        t.model_dump(mode="json") for t in (RETURNING, second, other_family)
    ]
    assert stored_customer_tag(BY_HAND, TEMPLATES) == {
        "name": "vip", "source": "manual", "by": "王小明", "reason": "老客户", "at": AT
    }  # fmt: skip


def test_history_entries_leave_out_a_first_rule_version_and_read_back_in_full() -> None:
    change = TagChange(tags=[RETURNING], added=[RETURNING], removed=[BY_HAND])
    rows = history_entries(change, AT)
    stored = [stored_entry(row, TEMPLATES) for row in rows]
    assert stored[0] == {"at": AT, "tag": "lifecycle:returning",
                         "rule_id": "lifecycle.returning", "args": "3"}  # fmt: skip
    assert [readable_entry(entry, TEMPLATES) for entry in stored] == rows
    # a person's entry names no rule: it has no version either
    assert readable_entry(stored[1], TEMPLATES)["rule_version"] is None


def test_a_history_entry_of_a_version_not_held_keeps_the_values_its_stand_in_shows() -> None:
    """A tag removed while its rule version's set no longer parses reads as the stand-in; its
    entry stores the values, not the stand-in as a reason, and reads as it did."""
    gone = RETURNING.model_copy(
        update={"rule_version": 9, "reason": "rule lifecycle.returning version 9: 3"}
    )
    [row] = history_entries(TagChange([], [], [gone]), AT)
    stored = stored_entry(row, TEMPLATES)
    assert stored["args"] == "3"
    assert "reason" not in stored
    assert readable_entry(stored, TEMPLATES) == row

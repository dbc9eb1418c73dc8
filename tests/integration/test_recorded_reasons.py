"""A tag's reason is stored as its template's values: after its rule is edited (a new version
with new words), the tags the earlier version gave still read as the sentences they were given,
from the rule sets once in force (``rule_versions``); a candidate never in force changes
nothing."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.tagger.bootstrap import RecordedJobs
from services.tagger.errors import Invalid
from services.tagger.order_record import HistoryEntry, OrderRecord
from services.tagger.read_model import ReadModel
from services.tagger.rule_activation import RuleActivation, remember_earlier_rules
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.book import RuleBook, version_of
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleFileError
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import OrderStore
from shared.stored_history import readable_history
from tests.factories import make_order

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BEFORE = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
# the status rule and the customer rule "returning" reworded, each as a new version
AFTER = (
    BEFORE.replace(
        '  - id: status\n    version: 1\n    tag_from: status\n    tag_prefix: "status:"\n'
        '    family: status\n    reason: "order status is {value}"',
        '  - id: status\n    version: 2\n    tag_from: status\n    tag_prefix: "status:"\n'
        '    family: status\n    reason: "status {value}"',
    )
    .replace(
        "  - id: lifecycle.returning\n    version: 1", "  - id: lifecycle.returning\n    version: 2"
    )
    .replace("{orders_total} orders → returning", "returning after {orders_total} orders")
)


def book_of(tmp_path: Path, name: str, text: str) -> RuleBook:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return RuleBook(path)


async def test_tags_and_entries_of_an_edited_rule_read_as_given(
    mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    assert AFTER.count("version: 2") == BEFORE.count("version: 2") + 2  # both reworded
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    before, after = book_of(tmp_path, "before.yaml", BEFORE), book_of(tmp_path, "after.yaml", AFTER)
    await versions.record(before.text, before.current, by="test")
    await versions.record(after.text, after.current, by="test")
    # a candidate that rewords version 1 is refused (``keep_words``); one recorded before
    # that check, never put in force (a diff's), gave no tags and lends no words
    candidate = BEFORE.replace('reason: "order status is {value}"', 'reason: "now {value}"')
    with pytest.raises(RuleFileError, match="rule status, field reason"):
        await versions.record(
            candidate, book_of(tmp_path, "c.yaml", candidate).current, by="test", active=False
        )
    await versions.versions.insert_one(
        {"version": version_of(candidate), "content": candidate, "activations": 0}
    )

    # an order tagged under the earlier rules, stored with their templates
    order = make_order("SO-EDIT")
    change = merge_tags(
        [],
        decide(before.current, order_facts(order, FiguresSnapshot(), order.status)),
        exclusive_families=before.current.exclusive_families,
        max_tags=20,
        at=AT,
    )
    record = OrderRecord(
        order, order.status, change.tags, FiguresSnapshot(), applied_events=["e1"], first_at=AT
    )
    await OrderStore(mongo_db, before.templates).save(
        [record], [HistoryEntry("SO-EDIT", "e1", AT, change.tags, [])]
    )
    status_then = next(tag for tag in change.tags if tag.name == "status:pending")
    assert status_then.reason == "order status is pending"
    assert after.templates().reason("status", 1, ["pending"]) is None  # not recorded yet

    await remember_earlier_rules(versions, after)

    store = OrderStore(mongo_db, after.templates)
    read = (await store.load(["SO-EDIT"]))["SO-EDIT"]
    assert {tag.name: tag.reason for tag in read.tags} == {t.name: t.reason for t in change.tags}
    history = readable_history(await store.history_of_orders({"SO-EDIT": read}), read.tags, None)
    assert [entry["event_id"] for entry in history] == ["e1"]
    # the version in force renders its own words
    assert after.templates().reason("status", 2, ["pending"]) == "status pending"
    customer = after.customer_templates()
    assert customer.reason("lifecycle.returning", 1, ["3"]) == "3 orders → returning"
    assert customer.reason("lifecycle.returning", 2, ["3"]) == "returning after 3 orders"
    # built once for the rule sets the book knows: nothing new recorded, the same templates
    templates = after.templates()
    await remember_earlier_rules(versions, after)
    assert after.templates() is templates


async def test_a_candidate_that_came_to_reword_a_version_in_force_is_refused_at_activation(
    mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    """Two candidates may each give a new rule version words of their own when recorded; the
    second one activated would reword the first's: refused (422), naming the rule. A version
    once in force is not checked again (a rollback to it), nor when recorded again (a
    restart with its file)."""
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    jobs = RecordedJobs(mongo_db, None)
    activation = RuleActivation(versions, jobs, ReadModel(mongo_db).count)
    before = book_of(tmp_path, "before.yaml", BEFORE)
    first = await versions.record(before.text, before.current, by="test")
    await versions.activate(first, by="test", expected=None)
    other = AFTER.replace("returning after {orders_total} orders", "{orders_total}: returning")
    candidates = []
    for name, text in (("a.yaml", AFTER), ("b.yaml", other)):
        book = book_of(tmp_path, name, text)
        candidates.append(await versions.record(text, book.current, by="test", active=False))

    done = await activation.activate(candidates[0], by="test", backfill=None)
    assert done.version == candidates[0]
    with pytest.raises(Invalid) as refused:
        await activation.activate(candidates[1], by="test", backfill=None)
    assert "rule lifecycle.returning, field reason" in str(refused.value)
    assert "returning after {orders_total} orders" in str(refused.value)
    assert "a new version (3)" in str(refused.value)
    # back to the first set, and its file recorded again as at a restart: both stand
    assert (await activation.rollback(None, by="test", backfill=None)).version == first
    assert await versions.record(before.text, before.current, by="test") == first


async def test_a_set_once_in_force_stands_in_another_text_though_a_later_one_reworded_it(
    mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    """Two sets in force before the check may disagree on a version's words (the later one's
    are read); the earlier one, its file put back with a comment added, is not refused."""
    versions = RuleVersions(mongo_db)
    await versions.ensure_indexes()
    before = book_of(tmp_path, "before.yaml", BEFORE)
    await versions.record(before.text, before.current, by="test")
    reworded = BEFORE.replace('reason: "order status is {value}"', 'reason: "now {value}"')
    now = datetime.now(UTC)
    await versions.versions.insert_one(  # in force before this release checked words
        {
            "version": version_of(reworded),
            "content": reworded,
            "rules": 0,
            "by": "test",
            "comment": "",
            "recorded_at": now,
            "activations": 1,
            "first_active_at": now,
            "last_active_at": now,
        }
    )
    again = before.text + "\n# put back\n"
    assert await versions.record(again, before.current, by="test") == version_of(again)
    fresh = book_of(tmp_path, "fresh.yaml", BEFORE.replace("order status is", "status is"))
    with pytest.raises(RuleFileError):
        await versions.record(fresh.text, fresh.current, by="test")

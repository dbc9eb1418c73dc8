"""The compact stored form of orders, tags and history (issue #14) answers what the full form
did: why a tag is there, by which rule version, since when, and the history for audit."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import bson
import pytest

from bench.written_forms import EARLIER_RELEASES_FORMS, written_as_before
from services.tagger.order_record import (
    APPLIED_EVENTS_KEPT,
    HistoryEntry,
    OrderRecord,
    kept_events,
    update_of,
)
from services.tagger.rule_changes import ReplayDecoder
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.store import ServerKind, unique_indexes_only
from shared.events import AppliedTag, TagSource
from shared.models import OrderStatus
from shared.stored_history import (
    applied_order,
    first_change_at,
    history_tag,
    readable_history,
    with_first_change,
)
from shared.stored_tags import (
    TagDefaults,
    args_of_stored,
    family_in_name,
    family_of_rule,
    order_tags,
    reason_of,
    rule_id_of,
    stored_args,
    stored_tag,
    stored_tags_of,
    tag_of,
)
from tests.factories import make_order

RULES = load_rules(DEFAULT_RULES_FILE)
TEMPLATES = ReasonTemplates(RULES)
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _tagged_record() -> OrderRecord:
    order = make_order("SO-1", shipping={"method": "same_day", "province": "上海"})
    figures = FiguresSnapshot(prior_order_count=3)
    change = merge_tags(
        [],
        decide(RULES, order_facts(order, figures, order.status)),
        exclusive_families=RULES.exclusive_families,
        max_tags=20,
        at=AT,
    )
    return OrderRecord(order, order.status, change.tags, figures, applied_events=["e1"])


def test_a_rule_tag_keeps_its_templates_values_and_reads_back_the_same_reason() -> None:
    record = _tagged_record()
    urgent = next(tag for tag in record.tags if tag.name == "urgent")

    stored = stored_tag(urgent, TEMPLATES, name_key="tag")

    # its rule's id names its family; its version, the first, is left out; a history entry
    # has no order's facts beside it, so its values are kept
    assert stored == {"tag": "urgent", "rule": "priority.fast-shipping", "args": "same_day"}
    assert history_tag(stored, TEMPLATES)["reason"] == urgent.reason


def test_an_order_document_reads_back_as_it_was_written() -> None:
    record = _tagged_record()

    document = bson.decode(
        bson.encode(record.to_document(TEMPLATES)), bson.CodecOptions(tz_aware=True)
    )
    again = OrderRecord.from_document(document, TEMPLATES)

    assert (again.order, again.status, again.tags, again.figures) == (
        record.order,
        record.status,
        record.tags,
        record.figures,
    )
    assert "reason" not in str(document["tags"])  # every default rule's reason renders back


def test_a_reason_its_template_does_not_render_is_kept_as_written() -> None:
    tag = AppliedTag(
        name="urgent",
        source=TagSource.RULE,
        rule_id="priority.fast-shipping",
        rule_version=1,
        reason="written by an older template",
        at=AT,
    )

    stored = stored_tag(tag, TEMPLATES)

    assert stored["reason"] == "written by an older template"
    assert order_tags({"tags": [stored], "tag_names": ["urgent"]}, TEMPLATES) == [tag]


def test_a_rule_version_the_rules_no_longer_hold_still_names_rule_version_and_values() -> None:
    stored = {"name": "urgent", "rule_id": "priority.fast-shipping", "rule_version": 7}

    tag = tag_of({**stored, "args": ["express"], "at": AT}, TEMPLATES)

    assert tag.reason == "rule priority.fast-shipping version 7: express"


def test_a_document_in_the_earlier_full_form_reads_the_same() -> None:
    full = {
        "name": "vip",
        "family": "customer",
        "source": "manual",
        "rule_id": None,
        "rule_version": None,
        "by": "li.na",
        "reason": "大客户",
        "at": "2026-11-25T12:00:00Z",
    }

    [tag] = order_tags({"tags": [full]}, TEMPLATES)

    assert (tag.name, tag.source, tag.by, tag.reason, tag.at) == (
        "vip",
        TagSource.MANUAL,
        "li.na",
        "大客户",
        AT,
    )


def test_history_names_what_it_added_and_reads_back_in_full_from_the_removing_change() -> None:
    record = _tagged_record()
    urgent = next(tag for tag in record.tags if tag.name == "urgent")
    created = HistoryEntry("SO-1", "e1", AT, record.tags, []).to_document(TEMPLATES)
    later = AT + timedelta(hours=1)
    regular = AppliedTag(
        name="regular", family="priority", source=TagSource.RULE, reason="x", at=later
    )
    shipped = HistoryEntry("SO-1", "e2", later, [regular], [urgent]).to_document(TEMPLATES)
    now_held = [regular, *(tag for tag in record.tags if tag.name != "urgent")]

    readable = readable_history([created, shipped], now_held, TEMPLATES)

    assert all(set(tag) == {"tag"} for tag in created["added"])  # names only
    first_urgent = next(t for t in readable[0]["added"] if t["tag"] == "urgent")
    assert (first_urgent["rule_id"], first_urgent["reason"]) == (
        "priority.fast-shipping",
        "same_day shipping → urgent",
    )
    assert [t["tag"] for t in readable[1]["removed"]] == ["urgent"]
    assert [t["reason"] for t in readable[1]["added"]] == ["x"]


def test_a_replaced_rule_version_is_what_an_earlier_entry_shows() -> None:
    old = AppliedTag(
        name="urgent", source=TagSource.RULE, rule_id="r", rule_version=1, reason="v1", at=AT
    )
    new = old.model_copy(update={"rule_version": 2, "reason": "v2"})
    entries: list[dict[str, Any]] = [
        HistoryEntry("SO-1", "e1", AT, [old], []).to_document(None),
        HistoryEntry("SO-1", "e2", AT + timedelta(1), [], [], replaced=[old]).to_document(None),
    ]

    readable = readable_history(entries, [new], None)

    assert readable[0]["added"][0]["reason"] == "v1"
    assert readable[1]["replaced"][0]["rule_version"] == 1


def test_an_update_sets_only_what_changed_and_never_stores_a_document_in_part() -> None:
    record = _tagged_record()
    stored = {**record.to_document(TEMPLATES), "version": 1}
    moved = OrderRecord(
        record.order.model_copy(update={"status": OrderStatus.SHIPPED}),
        OrderStatus.SHIPPED,
        record.tags,
        record.figures,
        applied_events=["e1"],
        version=1,
        stored=stored,
    )
    document = {**moved.to_document(TEMPLATES), "version": 2}

    update = update_of(document, moved.stored)

    assert set(update["$set"]) == {"order", "status", "version"}
    assert {**update["$setOnInsert"], **update["$set"], "order_no": "SO-1"} == document


def test_history_is_read_in_the_order_changes_were_applied_not_by_event_time() -> None:
    # a status change whose event was stamped before the creation event, applied after it
    shipped = {"order_no": "SO-1", "event_id": "e2", "at": AT, "version": 2}
    created = {"order_no": "SO-1", "event_id": "e1", "at": AT + timedelta(1), "version": 1}
    same_batch = {**shipped, "event_id": "e3", "step": 1}
    earlier_form = {"order_no": "SO-1", "event_id": "e0", "at": AT + timedelta(2)}

    ordered = sorted([same_batch, shipped, created, earlier_form], key=applied_order)

    assert [e["event_id"] for e in ordered] == ["e0", "e1", "e2", "e3"]


def _earlier_form(record: OrderRecord) -> dict[str, Any]:
    """The order as the tagger stored it before names were left out of its tags (main at
    17211a6): every tag with its name and rule version, tag_keys with an empty key, false
    fields written."""
    with written_as_before(EARLIER_RELEASES_FORMS):  # each switched field as then
        document = record.to_document(TEMPLATES)
        document["tags"] = []
        for tag in record.tags:
            whole = stored_tag(tag, TEMPLATES, name_key="name")
            if tag.at != document["tags_at"]:
                whole["at"] = tag.at
            document["tags"].append(whole)
    del document["tags_rule_version"]
    document["tag_keys"] = ["\x1fSO-1", *(f"{name}\x1fSO-1" for name in document["tag_names"])]
    document["contribution_reversed"] = False
    return document


def test_an_order_stores_each_tag_fact_once() -> None:
    record = _tagged_record()
    manual = AppliedTag(
        name="vip", source=TagSource.MANUAL, by="li.na", reason="大客户", at=AT + timedelta(1)
    )
    older = next(t for t in record.tags if t.name == "urgent").model_copy(
        update={"rule_version": 2, "reason": "written by version 2"}
    )
    record.tags = [*(t for t in record.tags if t.name != "urgent"), older, manual]

    document = record.to_document(TEMPLATES)
    stored = bson.decode(bson.encode(document), bson.CodecOptions(tz_aware=True))
    again = OrderRecord.from_document(stored, TEMPLATES)

    assert again.tags == record.tags
    assert document["tag_names"] == [tag.name for tag in record.tags]
    assert all("name" not in tag for tag in document["tags"])
    assert document["tags_rule_version"] == 1
    by_name = dict(zip(document["tag_names"], document["tags"], strict=True))
    assert by_name["urgent"]["rule_version"] == 2  # not the order's: kept
    assert by_name["vip"] == {
        "source": "manual",
        "rule_version": None,
        "by": "li.na",
        "reason": "大客户",
        "at": AT + timedelta(1),
    }
    # the status rule, named as its family, and its value: all three are in its name
    assert by_name["status:pending"] == {}
    # the province is the order's own, the region the name's value: both given again
    assert by_name["region:east-china"] == {}
    assert "contribution_reversed" not in document
    assert "tag_keys" not in document  # only where the store needs them (keyed=True)


def test_tag_keys_are_stored_only_for_a_store_of_unique_indexes_and_tags_to_key() -> None:
    record = _tagged_record()

    keyed = record.to_document(TEMPLATES, keyed=True)
    untagged = OrderRecord(record.order, record.status, [], record.figures)

    assert keyed["tag_keys"] == [f"{name}\x1fSO-1" for name in sorted(keyed["tag_names"])]
    assert "tag_keys" not in untagged.to_document(TEMPLATES, keyed=True)


def test_an_order_in_the_earlier_form_reads_the_same_and_is_rewritten_compact() -> None:
    record = _tagged_record()
    earlier = _earlier_form(record)
    assert "name" in earlier["tags"][0]
    assert "tags_rule_version" not in earlier

    again = OrderRecord.from_document(earlier, TEMPLATES)
    update = update_of({**again.to_document(TEMPLATES), "version": 2}, earlier)

    assert again.tags == record.tags
    assert [tag["name"] for tag in stored_tags_of(earlier)] == earlier["tag_names"]
    assert set(update["$unset"]) == {"tag_keys", "contribution_reversed", "currency"}
    assert {"tags", "tags_rule_version", "figures", "version"} <= set(update["$set"])


def test_the_replay_reads_every_tag_with_its_rule_and_version_from_either_form() -> None:
    record = _tagged_record()
    expected = [(t.name, t.family, t.rule_id, t.rule_version) for t in record.tags]

    for document in (record.to_document(TEMPLATES), _earlier_form(record)):
        replayed = ReplayDecoder()(document)
        assert [(t.name, t.family, t.rule_id, t.rule_version) for t in replayed.tags] == expected


def test_an_orders_first_change_names_no_tags_and_reads_as_adding_all_it_then_held() -> None:
    record = _tagged_record()
    first = HistoryEntry("SO-1", "e1", AT, record.tags, []).to_document(TEMPLATES, 1, 0)
    urgent = next(tag for tag in record.tags if tag.name == "urgent")
    shipped = HistoryEntry("SO-1", "e2", AT, [], [urgent]).to_document(TEMPLATES, 2, 0)
    held = [tag for tag in record.tags if tag.name != "urgent"]

    readable = readable_history([first, shipped], held, TEMPLATES)

    assert set(first) == {"order_no", "event_id", "at", "version"}  # no added, no removed
    assert sorted(t["tag"] for t in readable[0]["added"]) == sorted(t.name for t in record.tags)
    assert readable[0]["removed"] == []
    urgent_then = next(t for t in readable[0]["added"] if t["tag"] == "urgent")
    assert (urgent_then["rule_id"], urgent_then["reason"]) == (urgent.rule_id, urgent.reason)
    assert [t["tag"] for t in readable[1]["removed"]] == ["urgent"]
    assert "added" in shipped
    assert "removed" in shipped


def test_a_new_orders_first_change_is_kept_on_the_order_and_reads_as_a_stored_entry_did() -> None:
    record = _tagged_record()
    record.first_at = AT
    first = HistoryEntry("SO-1", "e1", AT, record.tags, [])
    assert record.first_change_implied(first)
    document = {**record.to_document(TEMPLATES), "version": 1}
    assert first_change_at(document) == AT  # stored: a release before would lose it
    stored_first = first.to_document(TEMPLATES, 1, 0)

    kept = with_first_change([], "SO-1", document["applied_events"], first_change_at(document))

    assert kept == [{"order_no": "SO-1", "event_id": "e1", "at": AT, "version": 1}]
    assert readable_history(kept, record.tags, TEMPLATES) == readable_history(
        [stored_first], record.tags, TEMPLATES
    )
    # an entry stored for the first event (an earlier release wrote one) stands
    assert with_first_change([stored_first], "SO-1", ["e1"], AT) == [stored_first]


def test_an_order_keeps_its_first_event_among_the_latest() -> None:
    many = [f"e{n}" for n in range(APPLIED_EVENTS_KEPT + 10)]
    assert kept_events(many) == [many[0], *many[-(APPLIED_EVENTS_KEPT - 1) :]]  # the first kept


def test_a_first_change_kept_on_the_order_is_not_its_first_events_when_that_added_nothing() -> None:
    record = _tagged_record()
    record.first_at = AT
    # the order's first event added nothing; the second, in the same batch and earlier by
    # its own time (found by review), added the tags: that is the order's first change
    record.applied_events = ["e0", "e1"]
    earlier = AT - timedelta(minutes=5)
    second = HistoryEntry("SO-1", "e1", earlier, record.tags, [])
    assert not record.first_change_implied(second)  # written: it is not the first event's
    stored = second.to_document(TEMPLATES, 1, 0)

    kept = with_first_change([stored], "SO-1", record.applied_events, AT)
    readable = readable_history(sorted(kept, key=applied_order), record.tags, TEMPLATES)

    assert [entry["event_id"] for entry in readable] == ["e1"]
    assert sorted(t["tag"] for t in readable[0]["added"]) == sorted(t.name for t in record.tags)


class _Admin:
    def __init__(self, build_info: dict[str, Any]) -> None:
        self.build_info = build_info

    async def command(self, name: str) -> dict[str, Any]:
        assert name == "buildInfo"
        return self.build_info


class _Database:
    def __init__(self, build_info: dict[str, Any]) -> None:
        self.client = SimpleNamespace(admin=_Admin(build_info))


@pytest.mark.parametrize(
    ("build_info", "unique_only"),
    [
        ({"version": "4.4.0", "versionArray": [4, 4, 0], "ok": 1.0}, True),  # mongo-java-server
        ({"version": "8.0.4", "gitVersion": "bc35ab4305d9920d9d0491c1c9ef9b72383d31f9"}, False),
    ],
)
async def test_the_store_asks_the_server_once_whether_it_needs_tag_keys(
    build_info: dict[str, Any], unique_only: bool
) -> None:
    database = _Database(build_info)
    kind = ServerKind(database, None)  # type: ignore[arg-type]

    assert await unique_indexes_only(database) is unique_only  # type: ignore[arg-type]
    assert await kind.unique_indexes_only() is unique_only
    database.client.admin.build_info = {}  # asked once: the answer is kept
    assert await kind.unique_indexes_only() is unique_only


def test_the_customer_figures_store_whole_second_times_as_integers_and_read_back_equal() -> None:
    figures = FiguresSnapshot(
        prior_order_count=2,
        recent_order_times=(1761955197.0, 1761955200.25),
        first_order_at=1761900000.0,
    )
    record = OrderRecord(make_order(), OrderStatus.PENDING, [], figures)

    stored = bson.decode(bson.encode(record.to_document()), bson.CodecOptions(tz_aware=True))

    assert stored["figures"]["recent"] == [1761955197, 1761955200.25]  # ``FIGURE_NAMES``
    assert type(stored["figures"]["first_order"]) is int
    assert OrderRecord.from_document(stored).figures == figures
    assert len(bson.encode(stored["figures"])) < len(bson.encode(figures.to_record()))


def test_an_order_tag_stored_again_is_a_form_of_its_own() -> None:
    urgent = AppliedTag(
        name="urgent",
        family="priority",
        source=TagSource.RULE,
        rule_id="priority.fast-shipping",
        rule_version=1,
        reason="same_day shipping → urgent",
        at=AT,
    )
    shared = TagDefaults(at=AT, rule_version=1)

    first = stored_tag(urgent, TEMPLATES, defaults=shared)
    first["extra"] = True  # a caller's document changes
    again = stored_tag(urgent, TEMPLATES, defaults=shared)
    later = stored_tag(
        urgent.model_copy(update={"at": AT + timedelta(hours=1)}), TEMPLATES, defaults=shared
    )
    apart = stored_tag(urgent, TEMPLATES, defaults=TagDefaults(at=AT, rule_version=2))

    assert again == {"rule": "priority.fast-shipping", "args": "same_day"}
    assert later == {**again, "at": AT + timedelta(hours=1)}
    assert apart == {**again, "rule_version": 1}


class NoTemplates:
    """A rule set's templates that render none of its reasons back (a reloaded rule set)."""

    def args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None:
        return None

    def reason(self, rule_id: str, version: int, args: list[str]) -> str | None:
        return None

    def placeholders(self, rule_id: str, version: int) -> int | None:
        return 1  # held, but renders nothing back

    def args_from_facts(
        self, rule_id: str, version: int, facts: Any, value: str | None = None
    ) -> list[str] | None:
        return None

    def stored_facts(self, document: Any) -> None:
        return None


def test_an_order_tag_is_stored_with_the_templates_it_is_stored_with() -> None:
    tag = AppliedTag(
        name="urgent",
        family="priority",
        source=TagSource.RULE,
        rule_id="priority.fast-shipping",
        rule_version=1,
        reason="same_day shipping → urgent",
        at=AT,
    )

    assert stored_tag(tag, TEMPLATES)["args"] == "same_day"
    for _ in range(2):  # each templates object its own form, whichever came first
        assert stored_tag(tag, NoTemplates())["reason"] == "same_day shipping → urgent"
        assert "args" not in stored_tag(tag, NoTemplates())
        assert stored_tag(tag, None)["reason"] == "same_day shipping → urgent"
        assert stored_tag(tag, TEMPLATES)["args"] == "same_day"


def test_a_reasons_values_are_one_string_and_a_value_holding_the_separator_keeps_the_list() -> None:
    assert stored_args(["express", "120.00"]) == "express\x1f120.00"
    assert args_of_stored({"args": "express\x1f120.00"}) == ["express", "120.00"]
    held = ["a\x1fb", "c"]
    assert stored_args(held) == held
    assert args_of_stored({"args": held}) == held
    assert args_of_stored({"args": ["same_day"]}) == ["same_day"]  # stored as a list before
    assert args_of_stored({}) == []


def test_a_reason_of_a_rule_version_no_longer_held_is_no_longer_than_a_tags_reason() -> None:
    stored = {"name": "big", "rule_id": "gone", "rule_version": 3, "args": ["x" * 300, "y" * 300]}
    reason = reason_of(stored, TEMPLATES)
    assert reason.startswith("rule gone version 3: xxx")
    assert len(reason) == 500
    assert tag_of({**stored, "at": AT}, TEMPLATES).reason == reason  # a valid tag


def test_an_earlier_rule_sets_templates_read_its_tags_but_not_its_family_defaults() -> None:
    """A default reason names the default tag, which the rules in force may not share."""
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    edited = parse_rules(
        text.replace("default: regular, ", "").replace(
            "  - id: status\n    version: 1", "  - id: status\n    version: 2"
        ),
        "edited",
    )
    templates = ReasonTemplates(edited, earlier=[RULES])

    assert templates.reason("status", 1, ["pending"]) == "order status is pending"
    assert templates.reason("default.priority", 1, []) is None


def test_a_tag_named_by_family_and_value_reads_its_reason_from_its_name_in_either_form() -> None:
    record = _tagged_record()
    document = {**record.to_document(TEMPLATES), "version": 1}
    at = document["tag_names"].index("status:pending")
    status = document["tags"][at]
    assert "args" not in status
    [read] = [t for t in order_tags(document, TEMPLATES) if t.name == "status:pending"]
    assert read.reason == "order status is pending"
    # an earlier form stored the value; a rule without values stored none: both read the same
    with_value = {**document, "tags": [
        {"family": "status", "args": "pending"} if i == at else tag
        for i, tag in enumerate(document["tags"])
    ]}  # fmt: skip
    assert order_tags(with_value, TEMPLATES) == order_tags(document, TEMPLATES)
    constant = ReasonTemplates(
        parse_rules(
            DEFAULT_RULES_FILE.read_text(encoding="utf-8")
            .replace('reason: "order status is {value}"', 'reason: "the order has a status"')
            .replace('reasons: {zh-CN: "订单状态为 {value}"}', 'reasons: {zh-CN: "订单有状态"}'),
            "constant",
        )
    )
    [read] = [t for t in order_tags(document, constant) if t.name == "status:pending"]
    assert read.reason == "the order has a status"
    # without templates (the notifier): the rule and its version, as a rule without values
    [named] = [t for t in order_tags(document, None) if t.name == "status:pending"]
    assert named.reason == "rule status version 1"


def test_the_form_two_releases_before_wrote_stores_the_family_and_reads_back_the_same() -> None:
    record = _tagged_record()
    with written_as_before(EARLIER_RELEASES_FORMS):
        document = record.to_document(TEMPLATES)
    by_name = dict(zip(document["tag_names"], document["tags"], strict=True))
    stored = bson.decode(bson.encode(document), bson.CodecOptions(tz_aware=True))

    assert by_name["status:pending"] == {"family": "status"}
    assert OrderRecord.from_document(stored, TEMPLATES).tags == record.tags
    assert [rule_id_of(tag, name) for name, tag in by_name.items()] == [
        t.rule_id for t in record.tags
    ]


def test_a_tag_named_by_its_rules_family_stores_neither_and_reads_back_the_same() -> None:
    record = _tagged_record()
    document = record.to_document(TEMPLATES)
    by_name = dict(zip(document["tag_names"], document["tags"], strict=True))
    stored = bson.decode(bson.encode(document), bson.CodecOptions(tz_aware=True))

    assert by_name["status:pending"] == {}
    assert by_name["category:electronics"] == {}
    assert by_name["region:east-china"] == {}  # its values: the order's and its name's
    assert by_name["urgent"] == {"rule": "priority.fast-shipping"}  # its rule's id names both
    assert OrderRecord.from_document(stored, TEMPLATES).tags == record.tags
    without_rules = {tag.name: tag.family for tag in order_tags(stored, None)}
    assert without_rules["status:pending"] == "status"  # the notifier reads without them
    assert without_rules["region:east-china"] == "region"
    expected = [(t.name, t.family, t.rule_id, t.rule_version) for t in record.tags]
    replayed = ReplayDecoder()(stored)
    assert [(t.name, t.family, t.rule_id, t.rule_version) for t in replayed.tags] == expected
    assert [rule_id_of(tag, name) for name, tag in by_name.items()] == [
        t.rule_id for t in record.tags
    ]


def test_only_a_rule_tag_of_the_family_its_name_holds_by_that_familys_rule_leaves_it_out() -> None:
    named = AppliedTag(
        name="status:pending", family="status", source=TagSource.RULE, rule_id="status",
        rule_version=1, reason="order status is pending", at=AT,
    )  # fmt: skip
    by_hand = named.model_copy(update={"source": TagSource.MANUAL, "rule_id": None, "by": "li"})
    other_rule = named.model_copy(update={"rule_id": "status.override"})
    other_family = named.model_copy(update={"family": "state", "rule_id": "state"})
    no_family = named.model_copy(update={"family": None, "rule_id": "promo"})

    shared = TagDefaults(at=AT, rule_version=1)
    assert stored_tag(named, TEMPLATES, defaults=shared) == {}
    for kept in (by_hand, other_family):
        assert stored_tag(kept, TEMPLATES, defaults=shared)["family"] == kept.family
    assert stored_tag(other_rule, TEMPLATES, defaults=shared)["rule"] == "status.override"
    assert "family" not in stored_tag(no_family, TEMPLATES, defaults=shared)
    assert stored_tag(no_family, TEMPLATES, defaults=shared)["rule_id"] == "promo"
    for tag in (named, by_hand, other_rule, other_family, no_family):
        document = {
            "tags": [stored_tag(tag, TEMPLATES, defaults=shared)], "tag_names": [tag.name],
            "tags_rule_version": 1, "tags_at": AT,
        }  # fmt: skip
        assert order_tags(document, TEMPLATES) == [tag]


def test_family_in_name_is_the_part_before_a_colon_with_a_value_after_it() -> None:
    assert family_in_name("status:pending") == "status"
    assert family_in_name("region:east-china") == "region"
    assert [family_in_name(n) for n in ("urgent", ":x", "status:", "")] == [None] * 4


def test_a_rule_tag_whose_rules_id_names_its_family_stores_the_id_as_rule_and_no_family() -> None:
    """The form written now (``WRITE_FAMILY_IN_RULE``); its values are the order's own data
    (``WRITE_ARGS_FROM_FACTS``)."""
    record = _tagged_record()
    manual = AppliedTag(name="vip", family="customer", source=TagSource.MANUAL, by="li.na",
                        reason="大客户", at=AT)  # fmt: skip
    record.tags = [*record.tags, manual]
    document = record.to_document(TEMPLATES)
    by_name = dict(zip(document["tag_names"], document["tags"], strict=True))
    stored = bson.decode(bson.encode(document), bson.CodecOptions(tz_aware=True))

    assert by_name["urgent"] == {"rule": "priority.fast-shipping"}
    assert by_name["returning-customer"]["rule"] == "customer.returning"
    assert "family" not in by_name["returning-customer"]
    assert by_name["status:pending"] == {}  # named by its family: as before
    assert by_name["vip"]["family"] == "customer"  # a person's: as before
    assert OrderRecord.from_document(stored, TEMPLATES).tags == record.tags
    assert [rule_id_of(tag, name) for name, tag in by_name.items()] == [
        t.rule_id for t in record.tags
    ]
    expected = [(t.name, t.family, t.rule_id, t.rule_version) for t in record.tags]
    replayed = ReplayDecoder()(stored)
    assert [(t.name, t.family, t.rule_id, t.rule_version) for t in replayed.tags] == expected
    without_rules = {tag.name: tag.family for tag in order_tags(stored, None)}
    assert without_rules["urgent"] == "priority"  # the notifier reads without them


@pytest.mark.parametrize(
    ("rule_id", "family"),
    [
        ("customer.returning", "customer"),
        ("default.priority", "priority"),
        ("order-type.new", "order-type"),
        ("risk.amount.anomaly", "risk"),
        ("default.", None),
        ("status", None),
    ],
)
def test_the_family_a_rules_id_names(rule_id: str, family: str | None) -> None:
    assert family_of_rule(rule_id) == family


def test_only_a_rule_tag_of_the_family_its_rules_id_names_takes_that_form() -> None:
    rule = {"source": TagSource.RULE, "rule_version": 1, "at": AT}
    other = AppliedTag(
        name="big-order", family="risk", rule_id="customer.big", reason="big", **rule
    )
    default_named = AppliedTag(name="x", family="default", rule_id="default.x", reason="x", **rule)
    for tag in (other, default_named):
        stored = stored_tag(tag, TEMPLATES)
        assert "rule" not in stored
        assert (stored["family"], stored["rule_id"]) == (tag.family, tag.rule_id)


def test_a_history_entrys_tag_reads_back_whole() -> None:
    """``WRITE_WHOLE_RULE_SHORT``: the rule as ``rule`` where its id names the family, the
    first rule version left out; the history reads it as written in full."""
    record = _tagged_record()
    for tag in record.tags:
        stored = stored_tag(tag, TEMPLATES, name_key="tag")
        assert "rule_version" not in stored
        full = history_tag(stored, TEMPLATES)
        assert full == {"tag": tag.name, "family": tag.family, "source": tag.source.value,
                        "rule_id": tag.rule_id, "rule_version": tag.rule_version, "by": None,
                        "reason": tag.reason}  # fmt: skip
    urgent = next(t for t in record.tags if t.name == "urgent")
    assert stored_tag(urgent, TEMPLATES, name_key="tag") == {
        "tag": "urgent", "rule": "priority.fast-shipping", "args": "same_day"
    }  # fmt: skip

"""A customer write sets only what differs from the document it read."""

from datetime import UTC, datetime
from typing import Any

from services.tagger.customers.model import CustomerRecord
from services.tagger.customers.store import CustomerStore
from services.tagger.customers.stored import stored_customer_tag
from services.tagger.rules.customer_facts import CustomerProfile
from shared.events import AppliedTag, TagSource

AT = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
LOYAL = AppliedTag(name="loyal", source=TagSource.RULE, rule_id="loyal", rule_version=3,
                   reason="5 orders", at=AT)  # fmt: skip


class OrdersTemplate:
    """The ``loyal`` rule's reason template, ``{orders} orders``, as the customer rules' templates
    take reasons apart and put them together."""

    def args_of(self, rule_id: str, version: int, reason: str) -> list[str] | None:
        count, _, rest = reason.partition(" ")
        return [count] if (rule_id, rest) == ("loyal", "orders") and count.isdigit() else None

    def reason(self, rule_id: str, version: int, args: list[str]) -> str | None:
        return f"{args[0]} orders" if rule_id == "loyal" and len(args) == 1 else None

    def placeholders(self, rule_id: str, version: int) -> int | None:
        return 1 if rule_id == "loyal" else None

    def args_from_facts(
        self, rule_id: str, version: int, facts: Any, value: str | None = None
    ) -> list[str] | None:
        return None  # not an order's

    def stored_facts(self, document: Any) -> None:
        return None


def compact(*tags: AppliedTag) -> list[dict[str, Any]]:
    return [stored_customer_tag(tag, None) for tag in tags]


def stored_customer(**changes: Any) -> dict[str, Any]:
    document = {
        "_id": "c-1",
        "name": "王芳",
        "company": None,
        "vip": False,
        "profile_at": AT.replace(tzinfo=None),  # as PyMongo hands it back: naive UTC
        "tags": compact(LOYAL),
        "tag_names": ["loyal"],
        "orders": 5,
        "spend_cents": 10_000,
        "version": 7,
    }
    return {**document, **changes}


def update_of(
    record: CustomerRecord, fields: dict[str, Any], templates: Any = None
) -> dict[str, Any]:
    store = CustomerStore.__new__(CustomerStore)  # _update reads no collection
    store._templates = (lambda: templates) if templates else None
    return store._update(record, fields, [])


def test_a_reread_customer_whose_figures_moved_sets_only_the_figures_and_version() -> None:
    record = CustomerRecord.from_document(stored_customer())
    update = update_of(record, {"orders": 6, "spend_cents": 10_000, "write_token": "t"})
    assert update == {"$set": {"orders": 6, "write_token": "t", "version": 8}}


def test_changed_tags_and_profile_are_set_and_a_field_never_stored_is_set_even_if_null() -> None:
    record = CustomerRecord.from_document(stored_customer())
    record.tags = []
    record.profile = CustomerProfile(name="王芳", company="杭州小店", vip=False)
    update = update_of(record, {"top_category": None})
    assert update["$set"] == {
        "company": "杭州小店",
        "tags": [],
        "tag_names": [],
        "top_category": None,
        "version": 8,
    }


def test_a_new_customer_is_written_whole() -> None:
    record = CustomerRecord(
        "c-2", profile=CustomerProfile(name="李雷"), profile_at=AT, tags=[LOYAL]
    )
    update = update_of(record, {"orders": 1})
    assert update["$set"] == {
        "orders": 1,
        "name": "李雷",
        "company": None,
        "vip": False,
        "profile_at": AT,
        "tags": compact(LOYAL),
        "tag_names": ["loyal"],
        "version": 1,
    }
    assert "$push" not in update


def test_a_tag_whose_reason_moved_is_set_by_position_and_field_not_the_whole_list() -> None:
    held = AppliedTag(name="vip", source=TagSource.MANUAL, by="王小明", reason="生日", at=AT)
    record = CustomerRecord.from_document(
        stored_customer(tags=compact(held, LOYAL), tag_names=["vip", "loyal"])
    )
    record.tags = [held, LOYAL.model_copy(update={"reason": "6 orders"})]
    update = update_of(record, {"orders": 6})
    assert update["$set"] == {"orders": 6, "tags.1.reason": "6 orders", "version": 8}


def test_a_rule_reason_is_stored_as_its_template_values_and_an_order_sets_only_those() -> None:
    templates = OrdersTemplate()
    stored = [stored_customer_tag(LOYAL, templates)]
    assert stored == [{"name": "loyal", "rule_id": "loyal", "rule_version": 3, "args": "5",
                       "at": AT}]  # fmt: skip
    record = CustomerRecord.from_document(stored_customer(tags=stored), templates)
    assert record.tags == [LOYAL]  # the reason rendered again
    record.tags = [LOYAL.model_copy(update={"reason": "6 orders"})]
    update = update_of(record, {"orders": 6}, templates)
    assert update["$set"] == {"orders": 6, "tags.0.args": "6", "version": 8}


BIG = AppliedTag(name="big", source=TagSource.RULE, rule_id="big", rule_version=1,
                 reason="spend 9000", at=AT)  # fmt: skip
NEW = AppliedTag(name="new", source=TagSource.RULE, rule_id="new", rule_version=1,
                 reason="first order", at=AT)  # fmt: skip


def test_a_held_tag_keeps_its_place_a_new_one_comes_after_it_whatever_order_decided() -> None:
    record = CustomerRecord.from_document(stored_customer())
    record.tags = [BIG, LOYAL]  # the rules' order
    update = update_of(record, {})
    assert update["$set"] == {
        "tags.1": stored_customer_tag(BIG, None),  # past the end: added
        "tag_names.1": "big",
        "version": 8,
    }


def test_a_new_tag_takes_the_place_of_one_removed() -> None:
    record = CustomerRecord.from_document(
        stored_customer(tags=compact(NEW, LOYAL), tag_names=["new", "loyal"])
    )
    record.tags = [BIG, LOYAL]
    update = update_of(record, {})
    assert update["$set"] == {
        "tags.0": stored_customer_tag(BIG, None),
        "tag_names.0": "big",
        "version": 8,
    }


def test_tags_removed_with_nothing_in_their_place_are_set_as_a_whole_list() -> None:
    record = CustomerRecord.from_document(
        stored_customer(tags=compact(NEW, LOYAL, BIG), tag_names=["new", "loyal", "big"])
    )
    for tags, kept in (([BIG], [BIG]), ([BIG, LOYAL], [LOYAL, BIG]), ([], [])):
        record.tags = tags
        update = update_of(record, {})
        assert update["$set"]["tags"] == compact(*kept)  # the held ones in their order
        assert update["$set"]["tag_names"] == [tag.name for tag in kept]
        assert not any(key.startswith("tags.") for key in update["$set"])


def test_a_tag_read_in_the_earlier_full_form_is_written_compact_once() -> None:
    record = CustomerRecord.from_document(stored_customer(tags=[LOYAL.model_dump(mode="json")]))
    update = update_of(record, {})
    assert update["$set"] == {"tags.0": stored_customer_tag(LOYAL, None), "version": 8}

    reread = CustomerRecord.from_document(stored_customer(tags=[update["$set"]["tags.0"]]))
    assert reread.tags == [LOYAL]
    assert update_of(reread, {})["$set"] == {"version": 8}


def test_a_tag_that_lost_a_field_at_its_place_is_set_whole() -> None:
    record = CustomerRecord.from_document(stored_customer())
    by_hand = AppliedTag(name="loyal", source=TagSource.MANUAL, by="王小明", reason="老客户", at=AT)
    record.tags = [by_hand]  # rule_id and rule_version gone; source and by new
    update = update_of(record, {})
    assert update["$set"] == {"tags.0": stored_customer_tag(by_hand, None), "version": 8}


def test_an_unchanged_customer_sets_no_tag_field() -> None:
    record = CustomerRecord.from_document(stored_customer())
    assert update_of(record, {})["$set"] == {"version": 8}


def test_a_kept_tag_is_written_in_the_form_it_was_read_not_made_again() -> None:
    as_read = {**stored_customer_tag(LOYAL, None), "extra": "as read"}
    record = CustomerRecord.from_document(stored_customer(tags=[as_read]))
    [kept] = record.tags
    record.tags = [kept, BIG]  # the evaluation kept the tag read and added one

    update = update_of(record, {})

    assert update["$set"] == {
        "tags.1": stored_customer_tag(BIG, None),
        "tag_names.1": "big",
        "version": 8,
    }
    record.tags = [kept.model_copy(), BIG]  # an equal tag, not the one read: made again
    assert update_of(record, {})["$set"]["tags.0"] == stored_customer_tag(LOYAL, None)

"""A customer write sets only what differs from the document it read."""

from datetime import UTC, datetime
from typing import Any

from services.tagger.customers.model import CustomerRecord
from services.tagger.customers.store import CustomerStore
from services.tagger.rules.customer_facts import CustomerProfile
from shared.events import AppliedTag, TagSource

AT = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
LOYAL = AppliedTag(name="loyal", source=TagSource.RULE, rule_id="loyal", rule_version=3,
                   reason="5 orders", at=AT)  # fmt: skip


def stored_customer(**changes: Any) -> dict[str, Any]:
    document = {
        "_id": "c-1",
        "name": "王芳",
        "company": None,
        "vip": False,
        "profile_at": AT.replace(tzinfo=None),  # as PyMongo hands it back: naive UTC
        "tags": [LOYAL.model_dump(mode="json")],
        "tag_names": ["loyal"],
        "orders": 5,
        "spend_cents": 10_000,
        "version": 7,
    }
    return {**document, **changes}


def update_of(record: CustomerRecord, fields: dict[str, Any]) -> dict[str, Any]:
    store = CustomerStore.__new__(CustomerStore)  # _update reads no collection
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
        "tags": [LOYAL.model_dump(mode="json")],
        "tag_names": ["loyal"],
        "version": 1,
    }
    assert "$push" not in update

"""The tagged event as published: exactly what pydantic serialises, however its tags overlap."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.tagger.publishing import tagged_event_json
from shared.events import AppliedTag, OrderFacts, OrderTagged, OrderTaggedAsRead, TagSource
from shared.models import OrderStatus

AT = datetime(2026, 11, 11, 0, 0, 1, 123000, tzinfo=UTC)


def tag(name: str, **fields: object) -> AppliedTag:
    values: dict[str, object] = {
        "name": name,
        "family": "priority",
        "source": TagSource.RULE,
        "rule_id": f"rule.{name}",
        "rule_version": 2,
        "reason": f'express 配送 → {name} "quoted" \\ \u2028 \x01',
        "at": AT,
    }
    return AppliedTag.model_validate(values | fields)


URGENT, VIP = tag("urgent"), tag("vip", family=None)
MANUAL = tag("加急", source=TagSource.MANUAL, rule_id=None, rule_version=None, by="王芳")
LATER = tag("region:east-china", at=AT + timedelta(hours=8))


@pytest.mark.parametrize(
    ("added", "removed", "tags", "tier"),
    [
        ([URGENT, VIP], [], [URGENT, VIP], "vip"),  # a new order: what it added is what it has
        ([], ["urgent", "旧标签"], [MANUAL, LATER], None),
        ([LATER], ["x\x01y"], [URGENT, MANUAL, LATER, VIP], None),
        ([], [], [], None),
        ([tag("vip", reason="other")], [], [VIP], "vip"),  # the same name, another tag
    ],
)
def test_the_published_json_is_pydantics_byte_for_byte(
    added: list[AppliedTag], removed: list[str], tags: list[AppliedTag], tier: str | None
) -> None:
    event = OrderTagged(
        source_event_id=uuid.uuid4(),
        order_no="SO-1",
        customer_id="C-1",
        tags_added=added,
        tags_removed=removed,
        tags=tags,
        facts=OrderFacts(
            status=OrderStatus.PENDING,
            total=Decimal("5000.10"),
            currency="CNY",
            customer_tier=tier,
            shipping_method="express",
            region=None,
        ),
    )

    assert tagged_event_json(event) == event.model_dump_json().encode()
    assert OrderTagged.model_validate_json(tagged_event_json(event)) == event
    # what the notifier reads of it: the same envelope, tags and facts
    read = OrderTaggedAsRead.model_validate_json(tagged_event_json(event))
    assert (read.event_id, read.occurred_at, read.order_no, read.customer_id, read.facts) == (
        event.event_id,
        event.occurred_at,
        event.order_no,
        event.customer_id,
        event.facts,
    )
    assert [(t.name, t.reason) for t in read.tags] == [(t.name, t.reason) for t in tags]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"event_type": "order.created"}, "event_type"),
        ({"order_no": "SO 1/../x"}, "order_no"),
        ({"tags": [{"name": "", "reason": "r"}]}, "tags.0.name"),
    ],
)
def test_the_notifier_refuses_what_the_tagged_event_would(
    change: dict[str, object], field: str
) -> None:
    event = json.loads(event_of([URGENT]).model_dump_json())

    with pytest.raises(ValidationError) as refused:
        OrderTaggedAsRead.model_validate({**event, **change})

    assert field in {".".join(str(p) for p in e["loc"]) for e in refused.value.errors()}
    OrderTaggedAsRead.model_validate({**event, "a_field_added_later": 1})  # ignored


def event_of(tags: list[AppliedTag]) -> OrderTagged:
    return OrderTagged(
        source_event_id=uuid.uuid4(),
        order_no="SO-2",
        customer_id="C-2",
        tags_added=tags[:1],
        tags=tags,
        facts=OrderFacts(status=OrderStatus.SHIPPED, total=Decimal("1"), currency="CNY"),
    )


def test_tags_alike_but_for_their_time_or_zone_keep_their_own_time() -> None:
    # the same instant in Beijing time and in UTC, and the same tag (rule, reason) at another
    # time in a later event: each is written with its own time, as pydantic writes it
    beijing = AT.astimezone(timezone(timedelta(hours=8)))
    first = event_of([tag("urgent"), tag("vip", at=beijing)])
    later = event_of([tag("urgent", at=AT + timedelta(days=1)), tag("vip", at=AT)])

    for event in (first, later, first):
        assert tagged_event_json(event) == event.model_dump_json().encode()
    assert b"+08:00" in tagged_event_json(first)


def test_tags_differing_in_any_field_but_time_are_not_confused() -> None:
    variants = [
        tag("urgent"),
        tag("urgent", reason="another reason"),
        tag("urgent", rule_version=3),
        tag("urgent", family=None),
        tag("urgent", source=TagSource.MANUAL, rule_id=None, rule_version=None, by="李雷"),
        tag("urgent", source=TagSource.MANUAL, rule_id=None, rule_version=None, by="韩梅梅"),
    ]
    for variant in variants:
        event = event_of([variant])
        assert tagged_event_json(event) == event.model_dump_json().encode()

"""The tagger's per-order models built without validating them again (``shared.events.built``):
each is exactly the model pydantic would validate from the same values."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bench.orders import order_payloads
from services.tagger.order_record import OrderRecord
from services.tagger.rules.book import RuleBook
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tagging import MAX_EVENT_TAGS, tagged_event_for
from shared.events import AppliedTag, OrderTagged, TagSource
from shared.models import Order, OrderStatus

FIGURES = [
    FiguresSnapshot(),
    FiguresSnapshot(
        prior_order_count=7,
        prior_lifetime_spend=Decimal("612000.50"),
        spend_365d=Decimal("150000"),
        recent_order_times=tuple(1_793_000_000.0 + i for i in range(6)),
        first_order_at=1_700_000_000.0,
    ),
]


def validated(model: AppliedTag | OrderTagged) -> AppliedTag | OrderTagged:
    """The model as pydantic validates it from its values."""
    return type(model).model_validate(model.model_dump())


def test_rule_tags_are_the_tags_pydantic_validates() -> None:
    rules = RuleBook(DEFAULT_RULES_FILE).current
    occurred = datetime(2026, 11, 26, 8, 30, 1, 654321, tzinfo=timezone(timedelta(hours=8)))
    made = 0
    for payload in order_payloads(300, "SO"):
        order = Order.model_validate(payload)
        for figures in FIGURES:
            decisions = decide(rules, order_facts(order, figures))
            change = merge_tags(
                [], decisions, exclusive_families=rules.exclusive_families, max_tags=20, at=occurred
            )
            for tag in change.tags:
                assert validated(tag) == tag
                assert tag.model_dump_json() == validated(tag).model_dump_json()
                assert tag.at == occurred.replace(microsecond=654000)
                made += 1
    assert made > 1_000


def record(tags: list[AppliedTag], status: OrderStatus = OrderStatus.SHIPPED) -> OrderRecord:
    order = Order.model_validate(order_payloads(1, "SO")[0])
    return OrderRecord(order=order, status=status, tags=tags, figures=FiguresSnapshot())


def tag(name: str, **fields: object) -> AppliedTag:
    values: dict[str, object] = {
        "name": name,
        "family": "tier",
        "source": TagSource.RULE,
        "rule_id": f"rule.{name}",
        "rule_version": 1,
        "reason": "why",
        "at": datetime(2026, 11, 11, tzinfo=UTC),
    }
    return AppliedTag.model_validate(values | fields)


@pytest.mark.parametrize("tiers", [[], ["vip", "regular"]])
def test_tagged_events_are_the_events_pydantic_validates(tiers: list[str]) -> None:
    vip, manual = tag("vip"), tag("加急", source=TagSource.MANUAL, rule_id=None, by="王芳")
    source = uuid.uuid4()

    event = tagged_event_for(
        source, datetime(2026, 11, 12, tzinfo=UTC), record([vip]), [manual], ["old"], tiers
    )

    assert validated(event) == event
    assert OrderTagged.model_validate_json(event.model_dump_json()) == event
    assert event.tags == [vip, manual]
    assert event.facts.customer_tier == ("vip" if tiers else None)
    assert event.facts.status is OrderStatus.SHIPPED


def test_an_event_past_the_tag_limit_is_refused_as_validation_would() -> None:
    many = [tag(f"t{i}") for i in range(MAX_EVENT_TAGS + 1)]

    with pytest.raises(ValueError, match="more than 200 tags"):
        tagged_event_for(uuid.uuid4(), datetime.now(UTC), record(many), [], [], [])

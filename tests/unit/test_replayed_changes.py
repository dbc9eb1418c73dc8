"""A change replayed after a crash is published as it was stored, even when a later change of
the same order (stored before the crash too) has since removed what it added (the chaos run:
urgent orders shipped within the outage never raised their urgent alert)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from services.tagger.order_record import OrderRecord
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tagging import stored_changes_tagged
from shared.events import AppliedTag, TagSource
from shared.models import OrderStatus
from tests.factories import make_order

CREATED = uuid.uuid4()
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class _History:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    async def history_of_orders(self, records: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["order_no"] in records]


def _regular() -> AppliedTag:
    return AppliedTag(name="regular", source=TagSource.RULE, reason="shipped", at=AT)


async def test_a_replayed_creation_still_adds_the_urgent_tag_a_later_shipment_removed() -> None:
    order = make_order("SO-9")
    shipped = OrderRecord(order, OrderStatus.SHIPPED, [_regular()], FiguresSnapshot())
    urgent = {
        "tag": "urgent",
        "family": "priority",
        "source": "rule",
        "rule_id": "same-day-shipping",
        "rule_version": 1,
        "by": None,
        "reason": "same-day shipping → urgent",
    }
    history: Any = _History(
        [{"order_no": "SO-9", "event_id": str(CREATED), "at": AT, "added": [urgent], "removed": []}]
    )

    [tagged] = await stored_changes_tagged(
        history, [("SO-9", CREATED, AT)], {"SO-9": shipped}, tiers=()
    )

    assert [tag.name for tag in tagged.tags_added] == ["urgent"]
    assert tagged.tags_added[0].reason == "same-day shipping → urgent"
    assert "urgent" in {tag.name for tag in tagged.tags}


async def test_a_replayed_creation_in_the_compact_form_finds_its_tag_in_the_removing_change() -> (
    None
):
    # the creation names what it added; the shipment that removed "urgent" keeps it as it was
    order = make_order("SO-9")
    shipped = OrderRecord(order, OrderStatus.SHIPPED, [_regular()], FiguresSnapshot())
    shipment = uuid.uuid4()
    urgent = {
        "tag": "urgent",
        "family": "priority",
        "rule_id": "priority.fast-shipping",
        "rule_version": 1,
        "args": ["same_day"],
    }
    history: Any = _History(
        [
            {"order_no": "SO-9", "event_id": str(CREATED), "at": AT, "added": [{"tag": "urgent"}]},
            {
                "order_no": "SO-9",
                "event_id": str(shipment),
                "at": AT.replace(hour=13),
                "added": [{"tag": "regular"}],
                "removed": [urgent],
            },
        ]
    )
    templates = ReasonTemplates(load_rules(DEFAULT_RULES_FILE))

    [tagged] = await stored_changes_tagged(
        history, [("SO-9", CREATED, AT)], {"SO-9": shipped}, tiers=(), templates=templates
    )

    [added] = tagged.tags_added
    assert (added.name, added.rule_id, added.source) == ("urgent", "priority.fast-shipping", "rule")
    assert added.reason == "same_day shipping → urgent"

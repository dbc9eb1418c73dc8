"""A change replayed after a crash is published as it was stored, even when a later change of
the same order (stored before the crash too) has since removed what it added (the chaos run:
urgent orders shipped within the outage never raised their urgent alert)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.store import OrderRecord
from services.tagger.tagging import stored_changes_tagged
from shared.events import AppliedTag, TagSource
from shared.models import OrderStatus
from tests.factories import make_order

CREATED = uuid.uuid4()
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class _History:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    async def history_of_events(
        self, order_nos: list[str], event_ids: list[str]
    ) -> list[dict[str, Any]]:
        return [
            e for e in self.entries if e["order_no"] in order_nos and e["event_id"] in event_ids
        ]


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

    [tagged] = await stored_changes_tagged(history, [("SO-9", CREATED, AT)], {"SO-9": shipped})

    assert [tag.name for tag in tagged.tags_added] == ["urgent"]
    assert tagged.tags_added[0].reason == "same-day shipping → urgent"
    assert "urgent" in {tag.name for tag in tagged.tags}

"""A replayed change is republished with the order as it was right after it (status and tags
then), not as it is now: the notifier raises and resolves alerts from that state, so a replay
carrying the shipped order of later would never raise the urgent alert its creation called for."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.tagger.order_record import OrderRecord
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.rules.schema import load_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tagging import stored_changes_tagged
from shared.events import AppliedTag, OrderCreated, StatusChanged, TagSource
from shared.models import OrderStatus
from tests.factories import make_order

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URGENT = {
    "tag": "urgent",
    "family": "priority",
    "source": "rule",
    "rule_id": "priority.fast-shipping",
    "rule_version": 1,
    "by": None,
    "reason": "express shipping → urgent",
}


class _History:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    async def history_of_orders(self, records: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["order_no"] in records]


def _regular(at: datetime) -> AppliedTag:
    return AppliedTag(name="regular", family="priority", source=TagSource.RULE, reason="", at=at)


async def test_each_replayed_change_carries_the_status_and_tags_it_left() -> None:
    order = make_order("SO-7", shipping={"method": "express", "province": "浙江", "city": "杭州"})
    created = OrderCreated(order=order, occurred_at=AT)
    processed = StatusChanged(
        order_no="SO-7",
        customer_id="C-1",
        status=OrderStatus.PROCESSED,
        occurred_at=AT + timedelta(minutes=10),
    )
    shipped = StatusChanged(
        order_no="SO-7",
        customer_id="C-1",
        status=OrderStatus.SHIPPED,
        occurred_at=AT + timedelta(minutes=20),
    )
    now = OrderRecord(
        order.model_copy(update={"status": OrderStatus.SHIPPED}),
        OrderStatus.SHIPPED,
        [_regular(shipped.occurred_at)],
        FiguresSnapshot(),
        applied_events=[str(e.event_id) for e in (created, processed, shipped)],
    )
    history: Any = _History(
        [
            {"order_no": "SO-7", "event_id": str(created.event_id), "at": AT, "added": [URGENT]},
            {
                "order_no": "SO-7",
                "event_id": str(shipped.event_id),
                "at": shipped.occurred_at,
                "added": [{"tag": "regular"}],
                "removed": [URGENT],
            },
        ]
    )
    replays = [created, processed, shipped]

    tagged = await stored_changes_tagged(
        history,
        [(e.order_no, e.event_id, e.occurred_at) for e in replays],
        {"SO-7": now},
        tiers=load_rules(DEFAULT_RULES_FILE).customer_tiers,
        sources={str(e.event_id): e for e in replays},
    )

    assert [(t.facts.status, sorted(tag.name for tag in t.tags)) for t in tagged] == [
        (OrderStatus.PENDING, ["urgent"]),
        (OrderStatus.PROCESSED, ["urgent"]),
        (OrderStatus.SHIPPED, ["regular"]),
    ]
    assert [[tag.name for tag in t.tags_added] for t in tagged] == [["urgent"], [], ["regular"]]
    assert tagged[2].tags_removed == ["urgent"]

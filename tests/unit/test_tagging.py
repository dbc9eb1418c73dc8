"""The tagger's split of a batch into concurrent lanes, and into events to apply."""

import asyncio
from dataclasses import replace

import pytest

from services.tagger.figure_keys import Apply
from services.tagger.order_record import OrderRecord
from services.tagger.rules.book import RuleBook
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.settings import DEFAULT_RULES_FILE
from services.tagger.tagging import (
    OrderEventModel,
    TaggingService,
    _lanes_by_customer,
    _split_fresh,
)
from shared.events import OrderCreated, OrderUpdated, StatusChanged
from shared.models import OrderStatus
from tests.factories import make_order


def created(order_no: str, customer: str) -> OrderCreated:
    return OrderCreated(order=make_order(order_no, customer={"id": customer, "name": customer}))


def test_each_customer_stays_in_one_lane_in_event_order() -> None:
    events = [
        created("A1", "alice"),
        created("B1", "bob"),
        StatusChanged(order_no="A1", customer_id="alice", status=OrderStatus.SHIPPED),
        created("C1", "carol"),
        created("A2", "alice"),
        created("D1", "dave"),
        created("E1", "erin"),
    ]

    lanes = _lanes_by_customer(events, 3)

    assert len(lanes) == 3
    assert sorted(e.event_id for lane in lanes for e in lane) == sorted(e.event_id for e in events)
    for lane in lanes:
        customers = {e.customer_id for e in lane}
        assert all(
            e.customer_id not in customers for other in lanes if other is not lane for e in other
        )
        assert lane == [e for e in events if e.customer_id in customers]


def test_fewer_customers_than_lanes_leaves_no_empty_lane() -> None:
    events = [created("A1", "alice"), created("A2", "alice")]

    assert _lanes_by_customer(events, 4) == [events]


async def test_a_failing_lane_stops_the_others_and_its_error_is_raised() -> None:
    """No lane of a failed attempt may still be writing when the batch is retried."""
    from typing import Any

    from services.tagger.rules.book import RuleBook
    from services.tagger.settings import DEFAULT_RULES_FILE
    from services.tagger.tagging import TaggingService

    still_waiting = asyncio.Event()
    cancelled: list[bool] = []

    class Store:
        async def load(self, order_nos: list[str]) -> dict[str, Any]:
            if order_nos == ["A1"]:
                await asyncio.sleep(0)
                raise ConnectionError("mongo went away")
            try:
                await still_waiting.wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return {}

    tagging = TaggingService(
        RuleBook(DEFAULT_RULES_FILE),
        None,
        Store(),
        max_tags=20,
        lanes=2,  # type: ignore[arg-type]
    )

    with pytest.raises(ConnectionError, match="mongo went away"):
        async with asyncio.timeout(5):
            await tagging.tag([created("A1", "alice"), created("B1", "bob")])
    assert cancelled == [True]


def test_an_orders_creation_is_applied_once_and_its_updates_always() -> None:
    """A creation of an order stored, or created earlier in the batch (or by an update of an
    order not yet seen), is not applied; an update never counts as a creation."""
    stored = OrderRecord(make_order("S1"), OrderStatus.CANCELLED, [], FiguresSnapshot())
    update_stored = OrderUpdated(order=make_order("S1", notes="gift"))
    create_stored = created("S1", "C-1")
    create_new = created("N1", "C-1")
    update_new = OrderUpdated(order=make_order("N1", notes="gift"))
    create_new_again = OrderCreated(order=create_new.order)
    update_unseen = OrderUpdated(order=make_order("U1"))
    create_unseen = created("U1", "C-1")
    events: list[OrderEventModel] = [
        update_stored, create_stored, create_new, update_new, create_new_again,
        update_unseen, create_unseen,
    ]  # fmt: skip

    fresh, replays, again = _split_fresh(events, {"S1": stored})

    assert fresh == [update_stored, create_new, update_new, update_unseen]
    assert replays == []
    assert again == [create_stored, create_new_again, create_unseen]


def test_an_event_applied_already_is_a_replay_even_if_it_is_a_creation() -> None:
    event = created("S1", "C-1")
    stored = OrderRecord(
        event.order,
        OrderStatus.PENDING,
        [],
        FiguresSnapshot(),
        applied_events=[str(event.event_id)],
    )
    assert _split_fresh([event], {"S1": stored}) == ([], [event], [])


class RacedStore:
    """An order store whose first write of a new order loses to another writer's."""

    def __init__(self) -> None:
        self.orders: dict[str, OrderRecord] = {}
        self.raced = False

    async def load(self, order_nos: list[str]) -> dict[str, OrderRecord]:
        return {no: self.orders[no] for no in order_nos if no in self.orders}

    async def save(self, records: list[OrderRecord], history: list[object]) -> set[str]:
        lost = set()
        for record in records:
            no = record.order.order_no
            if not self.raced and record.version == 0:  # another consumer stored it first
                self.raced = True
                self.orders[no] = replace(record, applied_events=["the-winners"], version=1)
                lost.add(no)
            elif no not in self.orders or self.orders[no].version == record.version:
                self.orders[no] = replace(record, version=record.version + 1)
            else:
                lost.add(no)
        return lost

    def templates(self) -> None:
        return None

    async def history_of_orders(self, changed: object) -> list[object]:
        return []


class CountedFigures:
    async def apply_in_epoch(self, operations: list[object]) -> tuple[str, list[object]]:
        return "epoch", [FiguresSnapshot() if isinstance(o, Apply) else True for o in operations]

    async def epoch(self) -> str:
        return "epoch"


async def test_a_status_change_refused_before_its_order_is_not_applied_on_a_retry() -> None:
    """Refused (no such order yet) in the first attempt, whose write of the order lost a race;
    the retry finds the winner's order stored and must keep the refusal, not apply it too."""
    change = StatusChanged(order_no="A1", customer_id="alice", status=OrderStatus.SHIPPED)
    store = RacedStore()
    tagging = TaggingService(
        RuleBook(DEFAULT_RULES_FILE),
        CountedFigures(),
        store,
        max_tags=20,
        lanes=1,  # type: ignore[arg-type]
    )

    outcome = await tagging.tag([change, created("A1", "alice")])

    assert [refusal.event for refusal in outcome.unknown_orders] == [change]
    assert store.orders["A1"].status is OrderStatus.PENDING
    assert str(change.event_id) not in store.orders["A1"].applied_events

"""The intake use case over in-memory adapters: outcomes per order, idempotency, outages."""

import pytest

from services.ingest.intake import Intake, Outcome, UnknownOrder
from services.ingest.publishing import BrokerUnavailable
from shared.errors import DependencyUnavailable
from shared.events import OrderCreated, OrderUpdated, StatusChanged
from shared.models import OrderStatus
from tests.factories import make_order
from tests.ingest_fakes import FakeClaims, FakePublisher


@pytest.fixture
def claims() -> FakeClaims:
    return FakeClaims()


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def intake(publisher: FakePublisher, claims: FakeClaims) -> Intake:
    return Intake(publisher, claims)


async def test_new_orders_are_published_once_and_resends_are_duplicates(
    intake: Intake, publisher: FakePublisher
) -> None:
    orders = [(i, make_order(f"SO-{i}")) for i in range(3)]

    first = await intake.submit(orders)
    again = await intake.submit(orders)

    assert [r.outcome for r in first] == [Outcome.ACCEPTED] * 3
    assert [r.outcome for r in again] == [Outcome.DUPLICATE] * 3
    assert [r.event_id for r in again] == [r.event_id for r in first]
    assert [e.order_no for e in publisher.published] == ["SO-0", "SO-1", "SO-2"]


async def test_other_content_under_an_accepted_number_conflicts(intake: Intake) -> None:
    await intake.submit([(0, make_order("SO-1"))])

    [result] = await intake.submit([(0, make_order("SO-1", notes="changed"))])

    assert result.outcome is Outcome.CONFLICT


async def test_the_same_number_twice_in_one_batch_is_published_once(
    intake: Intake, publisher: FakePublisher
) -> None:
    order = make_order("SO-1")

    results = await intake.submit([(0, order), (1, order), (2, make_order("SO-1", notes="x"))])

    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.CONFLICT]
    assert results[1].event_id == results[0].event_id
    assert len(publisher.published) == 1


async def test_what_kafka_refused_is_released_and_a_resend_is_accepted(
    intake: Intake, publisher: FakePublisher
) -> None:
    publisher.refuse = {"SO-2"}

    first = await intake.submit([(0, make_order("SO-1")), (1, make_order("SO-2"))])
    publisher.refuse = set()
    resend = await intake.submit([(0, make_order("SO-2"))])

    assert [r.outcome for r in first] == [Outcome.ACCEPTED, Outcome.UNAVAILABLE]
    assert "Kafka" in (first[1].detail or "")
    assert resend[0].outcome is Outcome.ACCEPTED


async def test_redis_down_leaves_every_order_unavailable_and_publishes_nothing(
    intake: Intake, claims: FakeClaims, publisher: FakePublisher
) -> None:
    claims.down = True
    order = make_order("SO-1")

    results = await intake.submit([(0, order), (1, make_order("SO-2")), (2, order)])

    assert [r.outcome for r in results] == [Outcome.UNAVAILABLE] * 3
    assert "Redis" in (results[0].detail or "")
    assert publisher.published == []


async def test_an_update_publishes_the_new_content_once(
    intake: Intake, publisher: FakePublisher
) -> None:
    await intake.submit([(0, make_order("SO-1"))])

    changed = make_order("SO-1", notes="gift wrap")
    first = await intake.update(changed)
    again = await intake.update(changed)

    assert (first.outcome, again.outcome) == (Outcome.ACCEPTED, Outcome.DUPLICATE)
    assert [type(e) for e in publisher.published] == [OrderCreated, OrderUpdated]


async def test_an_update_kafka_refused_raises_and_can_be_sent_again(
    intake: Intake, publisher: FakePublisher
) -> None:
    publisher.down = True
    with pytest.raises(BrokerUnavailable):
        await intake.update(make_order("SO-1"))
    publisher.down = False

    result = await intake.update(make_order("SO-1"))

    assert result.outcome is Outcome.ACCEPTED


async def test_a_status_change_finds_the_customer_of_a_known_order(
    intake: Intake, publisher: FakePublisher
) -> None:
    await intake.submit([(0, make_order("SO-1"))])

    event = await intake.change_status("SO-1", OrderStatus.SHIPPED, None)

    assert isinstance(publisher.published[-1], StatusChanged)
    assert (event.customer_id, event.status) == ("C-1", OrderStatus.SHIPPED)


async def test_a_status_change_of_an_unknown_order_needs_the_customer(intake: Intake) -> None:
    with pytest.raises(UnknownOrder, match="send customer_id"):
        await intake.change_status("SO-9", OrderStatus.SHIPPED, None)

    event = await intake.change_status("SO-9", OrderStatus.SHIPPED, "C-9")

    assert event.customer_id == "C-9"


async def test_a_status_change_with_its_customer_needs_no_redis(
    intake: Intake, claims: FakeClaims
) -> None:
    claims.down = True

    event = await intake.change_status("SO-9", OrderStatus.CANCELLED, "C-9")

    assert event.order_no == "SO-9"
    with pytest.raises(DependencyUnavailable):
        await intake.change_status("SO-9", OrderStatus.CANCELLED, None)

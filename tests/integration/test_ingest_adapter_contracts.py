"""The same checks on ingest's real adapters (Redis, Kafka) and on the fakes the fast tests use
(tests/ingest_fakes.py): a fake that behaves otherwise than its adapter fails here."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bench.harness import free_port
from services.ingest import idempotency
from services.ingest.idempotency import ClaimOutcome, ClaimRecord, OrderIdempotency
from services.ingest.intake import EventPublisher, OrderClaims
from services.ingest.publishing import BrokerUnavailable, OrderEventPublisher
from services.ingest.settings import IngestSettings
from shared.errors import DependencyUnavailable
from shared.events import OrderCreated, OrderEventModel, StatusChanged, order_event_adapter
from shared.kafka import ensure_topics, make_producer
from shared.models import OrderStatus
from shared.redis import make_redis
from tests.factories import make_order
from tests.ingest_fakes import FakeClaims, FakePublisher
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis", "redis, the release before's records", "fake"])
async def claims(
    request: Any, ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OrderClaims]:
    if request.param == "fake":
        yield FakeClaims()
        return
    if request.param == "redis, the release before's records":
        monkeypatch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", False)
    redis = make_redis(ingest_settings)
    try:
        yield OrderIdempotency(redis, retention_s=600)
    finally:
        await redis.aclose()


@pytest.fixture(params=["redis", "fake"])
async def claims_down(request: Any, ingest_settings: IngestSettings) -> AsyncIterator[OrderClaims]:
    if request.param == "fake":
        yield FakeClaims(down=True)
        return
    nowhere = ingest_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    redis: Redis = make_redis(nowhere)
    try:
        yield OrderIdempotency(redis, retention_s=600)
    finally:
        await redis.aclose()


@pytest.fixture(params=["kafka", "fake"])
async def publisher(
    request: Any, ingest_settings: IngestSettings
) -> AsyncIterator[tuple[EventPublisher, Any]]:
    if request.param == "fake":
        fake = FakePublisher()
        yield fake, None
        return
    await ensure_topics(ingest_settings)
    producer = make_producer(ingest_settings)
    await producer.start()
    try:
        yield OrderEventPublisher(producer, ingest_settings.topics.orders, 5.0), ingest_settings
    finally:
        await producer.stop()


async def test_a_claim_goes_pending_then_accepted_and_conflicts_on_other_content(
    claims: OrderClaims, run_id: str
) -> None:
    order = make_order(f"{run_id}-1")

    [first] = await claims.claim([(order, "e-1")])
    [while_pending] = await claims.claim([(order, "e-2")])
    await claims.confirm([(order, first)])
    [after] = await claims.claim([(order, "e-3")])
    [other] = await claims.claim([(make_order(f"{run_id}-1", notes="other"), "e-4")])

    assert first.outcome is ClaimOutcome.CLAIMED
    assert (while_pending.outcome, while_pending.event_id) == (ClaimOutcome.IN_FLIGHT, "e-1")
    assert (after.outcome, after.event_id) == (ClaimOutcome.DUPLICATE, "e-1")
    assert other.outcome is ClaimOutcome.CONFLICT
    assert await claims.customer_of(f"{run_id}-1") == "C-1"
    assert await claims.customer_of(f"{run_id}-unknown") is None


async def test_a_released_claim_can_be_claimed_again_but_not_someone_elses(
    claims: OrderClaims, run_id: str
) -> None:
    order = make_order(f"{run_id}-1")
    [mine] = await claims.claim([(order, "e-1")])

    await claims.release([(order, mine)])
    [again] = await claims.claim([(order, "e-2")])
    await claims.release([(order, mine)])  # a stale release leaves the new claim alone
    [still] = await claims.claim([(order, "e-3")])

    assert again.outcome is ClaimOutcome.CLAIMED
    assert (still.outcome, still.event_id) == (ClaimOutcome.IN_FLIGHT, "e-2")


async def test_a_batch_of_claims_answers_in_order(claims: OrderClaims, run_id: str) -> None:
    orders = [make_order(f"{run_id}-{i}") for i in range(50)]
    await claims.claim([(orders[7], "taken")])

    answers = await claims.claim([(order, f"e-{i}") for i, order in enumerate(orders)])

    assert [a.outcome for a in answers] == [
        ClaimOutcome.IN_FLIGHT if i == 7 else ClaimOutcome.CLAIMED for i in range(50)
    ]
    assert answers[7].event_id == "taken"
    assert answers[8].event_id == "e-8"


@pytest.mark.parametrize("written_compact", [False, True])
async def test_claims_written_in_either_form_are_read_by_this_release(
    ingest_settings: IngestSettings,
    monkeypatch: pytest.MonkeyPatch,
    run_id: str,
    written_compact: bool,
) -> None:
    """A rolling update or a rollback: claims one form's writer took, the other's reads (a
    duplicate, a conflict, the customer, a release of a pending claim by its own event)."""
    redis = make_redis(ingest_settings)
    claims = OrderIdempotency(redis, retention_s=600)
    accepted, pending = make_order(f"{run_id}-1"), make_order(f"{run_id}-2")
    try:
        monkeypatch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", written_compact)
        [first] = await claims.claim([(accepted, "e-1")])
        await claims.confirm([(accepted, first)])
        [held] = await claims.claim([(pending, "e-2")])
        raw = await redis.get(claims.key(accepted.order_no))
        assert raw.startswith(b"a|e-1|") if written_compact else raw.startswith(b"{")
        assert ClaimRecord.parse(raw).state == "accepted"

        monkeypatch.setattr(idempotency, "WRITE_COMPACT_CLAIMS", not written_compact)
        [again] = await claims.claim([(accepted, "e-3")])
        [other] = await claims.claim([(make_order(f"{run_id}-1", notes="other"), "e-4")])
        assert (again.outcome, again.event_id) == (ClaimOutcome.DUPLICATE, "e-1")
        assert other.outcome is ClaimOutcome.CONFLICT
        assert await claims.customer_of(accepted.order_no) == "C-1"
        await claims.release([(pending, held)])
        [retried] = await claims.claim([(pending, "e-5")])
        assert retried.outcome is ClaimOutcome.CLAIMED
    finally:
        await redis.aclose()


async def test_claims_without_redis_raise_dependency_unavailable(
    claims_down: OrderClaims, run_id: str
) -> None:
    order = make_order(f"{run_id}-1")

    with pytest.raises(DependencyUnavailable):
        await claims_down.claim([(order, "e-1")])
    with pytest.raises(DependencyUnavailable):
        await claims_down.customer_of(order.order_no)


async def test_published_events_are_acknowledged_one_answer_each(
    publisher: tuple[EventPublisher, Any], run_id: str
) -> None:
    adapter, settings = publisher
    events: list[OrderEventModel] = [
        OrderCreated(order=make_order(f"{run_id}-1")),
        StatusChanged(order_no=f"{run_id}-1", customer_id="C-1", status=OrderStatus.SHIPPED),
    ]

    errors = await adapter.publish_many(events)

    assert errors == [None, None]
    if settings is not None:
        records = await read_topic(settings, settings.topics.orders, 2)
        assert [order_event_adapter.validate_json(r.value) for r in records] == events
    else:
        assert adapter.published == events  # type: ignore[attr-defined]


def test_the_publishers_raise_the_same_outage_error() -> None:
    assert issubclass(BrokerUnavailable, DependencyUnavailable)

"""The intake use case: validated orders in, order events on Kafka, one outcome per order.

Shared by the HTTP API and the file importer, so both apply the same validation and the same
idempotency by order number.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from services.ingest import metrics
from services.ingest.idempotency import Claim, ClaimOutcome, digest_of, order_digest
from services.ingest.publishing import BrokerUnavailable, EncodedEvent, new_orders
from shared.errors import DependencyUnavailable, NotFound
from shared.events import OrderEventModel, OrderUpdated, StatusChanged
from shared.http import field_errors
from shared.models import Order, OrderStatus

log = structlog.get_logger("ingest")


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # identical order already accepted: nothing published
    CONFLICT = "conflict"  # same order number, different content
    IN_FLIGHT = "in_flight"  # identical order being accepted by another request right now
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"  # Kafka or Redis did not answer: not accepted, retry


@dataclass(slots=True)
class ItemResult:
    index: int
    order_no: str | None
    outcome: Outcome
    event_id: str | None = None
    errors: Sequence[dict[str, str]] = ()
    detail: str | None = None  # why an order was not taken, when no field is to blame

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "index": self.index,
            "order_no": self.order_no,
            "outcome": self.outcome.value,
        }
        if self.event_id:
            body["event_id"] = self.event_id
        if self.errors:
            body["errors"] = self.errors
        if self.detail:
            body["detail"] = self.detail
        return body


def parse_orders(raw_items: list[Any]) -> tuple[list[tuple[int, Order]], list[ItemResult]]:
    """Validate each raw item on its own, so one bad order never sinks its neighbours."""
    valid: list[tuple[int, Order]] = []
    invalid: list[ItemResult] = []
    for index, raw in enumerate(raw_items):
        try:
            valid.append((index, Order.model_validate(raw)))
        except ValidationError as error:
            order_no = raw.get("order_no") if isinstance(raw, dict) else None
            invalid.append(
                ItemResult(
                    index,
                    order_no if isinstance(order_no, str) else None,
                    Outcome.INVALID,
                    errors=field_errors(error.errors()),
                )
            )
    metrics.REJECTED.labels("invalid").inc(len(invalid))
    return valid, invalid


class UnknownOrder(NotFound):
    """A status change for an order ingest has no record of, and no customer id was given."""


class EventPublisher(Protocol):
    """Kafka as intake needs it (``OrderEventPublisher``; an in-memory fake in tests)."""

    async def publish(self, event: OrderEventModel) -> None: ...

    async def publish_encoded(
        self, events: Sequence[EncodedEvent]
    ) -> list[BaseException | None]: ...


class OrderClaims(Protocol):
    """Idempotency by order number (``OrderIdempotency``; an in-memory fake in tests)."""

    async def claim(
        self, orders: Sequence[tuple[Order, str]], digests: Sequence[str] | None = None
    ) -> list[Claim]: ...

    async def confirm(self, accepted: list[tuple[Order, Claim]]) -> None: ...

    async def release(self, failed: list[tuple[Order, Claim]]) -> None: ...

    async def customer_of(self, order_no: str) -> str | None: ...


class Intake:
    def __init__(self, publisher: EventPublisher, idempotency: OrderClaims) -> None:
        self._publisher = publisher
        self._idempotency = idempotency

    async def submit(self, orders: list[tuple[int, Order]]) -> list[ItemResult]:
        """Accept new orders: claim, publish concurrently, confirm what Kafka acknowledged."""
        results: dict[int, ItemResult] = {}
        first_in_batch: dict[str, tuple[Order, int]] = {}
        unique: list[tuple[int, Order]] = []
        repeats: list[int] = []
        for index, order in orders:  # the same number twice in one batch
            earlier = first_in_batch.get(order.order_no)
            if earlier is None:
                unique.append((index, order))
                first_in_batch[order.order_no] = (order, index)
                continue
            same = order_digest(earlier[0]) == order_digest(order)
            results[index] = ItemResult(
                index, order.order_no, Outcome.DUPLICATE if same else Outcome.CONFLICT
            )
            repeats.append(index)

        made = new_orders([order for _, order in unique])
        try:
            claims = await self._idempotency.claim(
                [(order, new.event_id) for (_, order), new in zip(unique, made, strict=True)],
                [digest_of(new.order_json) for new in made],
            )
        except DependencyUnavailable as error:
            for index, order in unique:
                results[index] = ItemResult(
                    index, order.order_no, Outcome.UNAVAILABLE, detail=str(error)
                )
            return self._finish(results, repeats, first_in_batch)
        to_publish = []
        for (index, order), new, claim in zip(unique, made, claims, strict=True):
            if claim.outcome is ClaimOutcome.CLAIMED:
                to_publish.append((index, order, new, claim))
            else:
                results[index] = ItemResult(
                    index, order.order_no, Outcome(claim.outcome.value), event_id=claim.event_id
                )

        errors = await self._publisher.publish_encoded([new for _, _, new, _ in to_publish])
        published: list[tuple[Order, Claim]] = []
        failed: list[tuple[Order, Claim]] = []
        for (index, order, _, claim), kept_out in zip(to_publish, errors, strict=True):
            if kept_out is None:
                published.append((order, claim))
                results[index] = ItemResult(
                    index, order.order_no, Outcome.ACCEPTED, event_id=claim.event_id
                )
            else:
                failed.append((order, claim))
                results[index] = ItemResult(
                    index, order.order_no, Outcome.UNAVAILABLE, detail=_NOT_ACKNOWLEDGED
                )
        await self._settle(published, failed)
        return self._finish(results, repeats, first_in_batch)

    async def _settle(
        self, published: list[tuple[Order, Claim]], failed: list[tuple[Order, Claim]]
    ) -> None:
        """Record what Kafka took and free what it did not. Kafka holds the accepted events
        already, so a Redis outage here costs only the memory of them: the pending claims
        expire, and a resend after that publishes again (consumers dedupe by order number)."""
        try:
            if published:
                await self._idempotency.confirm(published)
            if failed:
                await self._idempotency.release(failed)
        except DependencyUnavailable as error:
            log.warning(
                "claims_not_settled", published=len(published), failed=len(failed), error=str(error)
            )

    @staticmethod
    def _finish(
        results: dict[int, ItemResult],
        repeats: list[int],
        first_in_batch: dict[str, tuple[Order, int]],
    ) -> list[ItemResult]:
        for index in repeats:  # a repeat within the batch follows the first one
            first = results[first_in_batch[results[index].order_no or ""][1]]
            if first.outcome is Outcome.UNAVAILABLE:
                results[index] = replace(first, index=index)
            elif results[index].outcome is Outcome.DUPLICATE:
                results[index].event_id = first.event_id
        _count(results.values())
        return [results[index] for index in sorted(results)]

    async def update(self, order: Order) -> ItemResult:
        """A changed order: published as order.updated unless identical to what was accepted."""
        event = OrderUpdated(order=order)
        [claim] = await self._idempotency.claim([(order, str(event.event_id))])
        if claim.outcome is ClaimOutcome.DUPLICATE:
            metrics.DUPLICATES.inc()
            return ItemResult(0, order.order_no, Outcome.DUPLICATE, event_id=claim.event_id)
        if claim.outcome is ClaimOutcome.IN_FLIGHT:
            return ItemResult(0, order.order_no, Outcome.IN_FLIGHT, event_id=claim.event_id)
        try:
            await self._publisher.publish(event)
        except BrokerUnavailable:
            if claim.outcome is ClaimOutcome.CLAIMED:
                await self._settle([], [(order, claim)])
            raise
        # later resends of the new content are duplicates of this update
        await self._settle([(order, replace(claim, event_id=str(event.event_id)))], [])
        metrics.ACCEPTED.labels("updated").inc()
        return ItemResult(0, order.order_no, Outcome.ACCEPTED, event_id=str(event.event_id))

    async def change_status(
        self, order_no: str, status: OrderStatus, customer_id: str | None
    ) -> StatusChanged:
        customer_id = customer_id or await self._idempotency.customer_of(order_no)
        if customer_id is None:
            raise UnknownOrder(
                f"order {order_no!r} is unknown to ingest (or past its retention); "
                "send customer_id with the status change"
            )
        event = StatusChanged(order_no=order_no, customer_id=customer_id, status=status)
        await self._publisher.publish(event)
        metrics.ACCEPTED.labels("status_changed").inc()
        return event


_NOT_ACKNOWLEDGED = "Kafka did not acknowledge the order; it was not accepted, retry later"


def _count(results: Any) -> None:
    """Once per outcome, not per order (a labelled counter's lookup costs more than the add)."""
    outcomes = Counter(result.outcome for result in results)
    for outcome, count in outcomes.items():
        if outcome is Outcome.ACCEPTED:
            metrics.ACCEPTED.labels("created").inc(count)
        elif outcome is Outcome.DUPLICATE:
            metrics.DUPLICATES.inc(count)
        else:
            metrics.REJECTED.labels(outcome.value).inc(count)

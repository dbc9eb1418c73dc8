"""In-memory stand-ins for ingest's adapters, for fast tests of the use cases. Each behaves as the
real adapter does; tests/integration/test_ingest_adapter_contracts.py runs the same checks on
both, so a fake that drifts from its adapter fails there."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.ingest.idempotency import Claim, ClaimOutcome, order_digest
from services.ingest.publishing import BrokerUnavailable, EncodedEvent, encoded, event_value
from shared.errors import DependencyUnavailable
from shared.events import OrderEventModel, order_event_adapter, order_event_key
from shared.models import Order


@dataclass
class FakeClaims:
    """``OrderIdempotency`` in a dict; ``down`` makes every call fail as an unreachable Redis."""

    records: dict[str, dict[str, str]] = field(default_factory=dict)
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise DependencyUnavailable("redis", "Redis is unavailable (fake); retry later")

    async def claim(
        self, orders: Sequence[tuple[Order, str]], digests: Sequence[str] | None = None
    ) -> list[Claim]:
        self._check()
        claims = []
        given = digests or [order_digest(order) for order, _ in orders]
        for (order, event_id), digest in zip(orders, given, strict=True):
            assert digest == order_digest(order), "a digest given must be the order's own"
            record = self.records.get(order.order_no)
            if record is None:
                self.records[order.order_no] = _record(order, digest, event_id, "pending")
                claims.append(Claim(ClaimOutcome.CLAIMED, event_id, order.customer.id, digest))
                continue
            if record["digest"] != digest:
                outcome = ClaimOutcome.CONFLICT
            elif record["state"] == "pending":
                outcome = ClaimOutcome.IN_FLIGHT
            else:
                outcome = ClaimOutcome.DUPLICATE
            claims.append(Claim(outcome, record["event_id"], record["customer_id"], digest))
        return claims

    async def confirm(self, accepted: list[tuple[Order, Claim]]) -> None:
        self._check()
        for order, claim in accepted:
            self.records[order.order_no] = _record(order, claim.digest, claim.event_id, "accepted")

    async def release(self, failed: list[tuple[Order, Claim]]) -> None:
        self._check()
        for order, claim in failed:
            record = self.records.get(order.order_no)
            if record and record["event_id"] == claim.event_id and record["state"] == "pending":
                del self.records[order.order_no]

    async def customer_of(self, order_no: str) -> str | None:
        self._check()
        record = self.records.get(order_no)
        return record["customer_id"] if record else None


@dataclass
class FakePublisher:
    """``OrderEventPublisher`` into a list; ``refuse`` holds order numbers Kafka will not take,
    ``down`` refuses everything."""

    published: list[OrderEventModel] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    down: bool = False

    async def publish(self, event: OrderEventModel) -> None:
        [error] = await self.publish_many([event])
        if error is not None:
            raise BrokerUnavailable(f"Kafka did not acknowledge the event: {error!r}")

    async def publish_many(self, events: Sequence[OrderEventModel]) -> list[BaseException | None]:
        return await self.publish_encoded([encoded(event) for event in events])

    async def publish_encoded(self, events: Sequence[EncodedEvent]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for sent in events:
            event = order_event_adapter.validate_json(sent.value)
            assert sent.value == event_value(event), "a value must be its event's own JSON"
            assert (sent.key, sent.order_no) == (order_event_key(event), event.order_no)
            if self.down or event.order_no in self.refuse:
                errors.append(TimeoutError("not acknowledged (fake)"))
            else:
                self.published.append(event)
                errors.append(None)
        return errors


def _record(order: Order, digest: str, event_id: str, state: str) -> dict[str, str]:
    return {
        "digest": digest,
        "event_id": event_id,
        "customer_id": order.customer.id,
        "state": state,
    }

"""Events on Kafka: what ingest publishes, what the tagger publishes, what the notifier raises.

Every event carries an ``event_id`` (idempotency of effects under at-least-once delivery) and a
``schema_version`` so consumers can refuse what they do not understand.
"""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from shared.models import CurrencyCode, Identifier, Order, OrderStatus, ShortText, StrictModel

M = TypeVar("M", bound=BaseModel)
_set_slot = object.__setattr__  # pydantic's own way past a frozen model's __setattr__


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_millisecond(moment: datetime) -> datetime:
    """A time as MongoDB keeps it (a BSON date holds milliseconds), so what is read back
    compares equal to what was written."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def built(model: type[M], values: dict[str, Any]) -> M:
    """A model of values that are valid by construction (every field given, each already of
    its field's type: made by ordertag's code from validated events and rule sets), without
    validating them again. For the tagger's per-order objects (tags, tagged events), where
    validation cost more than the rest of building them; what comes from outside (Kafka,
    HTTP, files, the store) is always validated. ``model(**values)`` is the same model."""
    instance = model.__new__(model)
    _set_slot(instance, "__dict__", values)
    _set_slot(instance, "__pydantic_fields_set__", set(values))
    _set_slot(instance, "__pydantic_extra__", None)
    _set_slot(instance, "__pydantic_private__", None)
    return instance


class EventType(StrEnum):
    ORDER_CREATED = "order.created"
    ORDER_UPDATED = "order.updated"
    STATUS_CHANGED = "order.status_changed"


class _Envelope(StrictModel):
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    schema_version: Literal[1] = 1  # bump with a new envelope; consumers refuse the unknown


class OrderCreated(_Envelope):
    event_type: Literal[EventType.ORDER_CREATED] = EventType.ORDER_CREATED
    order: Order

    @property
    def order_no(self) -> str:
        return self.order.order_no

    @property
    def customer_id(self) -> str:
        return self.order.customer.id


class OrderUpdated(OrderCreated):
    event_type: Literal[EventType.ORDER_UPDATED] = EventType.ORDER_UPDATED  # type: ignore[assignment]


class StatusChanged(_Envelope):
    event_type: Literal[EventType.STATUS_CHANGED] = EventType.STATUS_CHANGED
    order_no: Identifier
    customer_id: Identifier
    status: OrderStatus


# The order-event union, spelled here only: a new kind of order event is added in this line.
OrderEventModel = OrderCreated | OrderUpdated | StatusChanged
OrderEvent = Annotated[OrderEventModel, Field(discriminator="event_type")]
order_event_adapter: TypeAdapter[OrderEventModel] = TypeAdapter(OrderEvent)


def order_event_key(event: OrderEventModel) -> bytes:
    """Kafka key of an order event.

    Keyed by customer, not by order: the tagger's customer figures (order count, spend, velocity)
    depend on the order in which one customer's events are applied, and Kafka keeps order only
    within a partition. Same key, same partition, so one customer's events stay in order.
    """
    return customer_key(event.customer_id)


def customer_key(customer_id: str) -> bytes:
    """The Kafka key of a customer's order events (``order_event_key``)."""
    return customer_id.encode()


class TagSource(StrEnum):
    RULE = "rule"
    MANUAL = "manual"


class AppliedTag(StrictModel):
    """A tag on an order, with where it came from and why."""

    name: ShortText
    family: ShortText | None = None
    source: TagSource
    rule_id: ShortText | None = None
    rule_version: int | None = None
    by: ShortText | None = None
    reason: Annotated[str, Field(max_length=500)]
    at: AwareDatetime

    def timeless(self) -> tuple[Any, ...]:
        """Every field but the time: what the same rule's tag shares across orders (the key
        of the forms built once per tag and reason for its JSON and its stored form)."""
        fields = self.__dict__
        return (
            fields["name"],
            fields["family"],
            fields["source"],
            fields["rule_id"],
            fields["rule_version"],
            fields["by"],
            fields["reason"],
        )


class OrderFacts(StrictModel):
    """What an alert needs to know about an order without reading the store."""

    status: OrderStatus
    total: Decimal
    currency: CurrencyCode
    customer_tier: ShortText | None = None
    shipping_method: ShortText | None = None
    region: ShortText | None = None


class OrderTagged(_Envelope):
    """Published by the tagger after an order's tags are stored."""

    event_type: Literal["order.tagged"] = "order.tagged"
    source_event_id: UUID
    order_no: Identifier
    customer_id: Identifier
    tags_added: list[AppliedTag] = Field(default_factory=list, max_length=200)
    tags_removed: list[ShortText] = Field(default_factory=list, max_length=200)
    tags: list[AppliedTag] = Field(max_length=200)
    facts: OrderFacts


class TagAsRead(BaseModel):
    """A tag of an ``order.tagged`` event as the notifier reads it: its name and reason."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: ShortText
    reason: Annotated[str, Field(max_length=500)]


class OrderTaggedAsRead(BaseModel):
    """An ``order.tagged`` event as the notifier reads it: what alerts are decided from. The
    tags added and removed (as much again as the tags) and each tag's provenance are not
    read: decoding the whole event was ~19 µs of the notifier's ~300 per alert, this ~9.
    The fields read are checked as ``OrderTagged`` checks them; an unknown schema or type is
    refused; what is not read (the source event id, tags added and removed, provenance) is
    not checked."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID
    occurred_at: AwareDatetime
    schema_version: Literal[1]
    event_type: Literal["order.tagged"]
    order_no: Identifier
    customer_id: Identifier
    tags: list[TagAsRead] = Field(max_length=200)
    facts: OrderFacts


class AlertKind(StrEnum):
    URGENT = "urgent"
    VIP = "vip"
    FRAUD_RISK = "fraud_risk"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"  # no reason holds any more (the order moved on)


class Alert(StrictModel):
    """One alert for support staff: exactly one per order and team, updated as the order
    changes (``revision`` counts the changes people were told about)."""

    alert_id: str
    kind: AlertKind
    severity: Severity
    order_no: Identifier
    customer_id: Identifier
    customer_tier: ShortText | None = None
    amount: Decimal
    currency: CurrencyCode
    tags: list[ShortText]
    reasons: list[str]
    order_url: str
    created_at: AwareDatetime = Field(default_factory=utc_now)
    team: ShortText | None = None
    status: AlertStatus = AlertStatus.OPEN
    revision: int = Field(default=1, ge=1)

    @staticmethod
    def id_for(order_no: str, kind: AlertKind) -> str:
        """The dedupe key: one alert per order and kind, whatever Kafka redelivers."""
        return f"{order_no}:{kind.value}"

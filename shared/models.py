"""The order as a CRM records it.

Strict on purpose: unknown fields are refused and every string and list has a limit, so a bad
or hostile payload fails at the boundary with a message naming the field, not deep inside a rule.
"""

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

MAX_ORDER_LINES = 500
MAX_NOTES_LENGTH = 4000

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# Order numbers and customer ids travel in URL paths, Kafka keys, Redis keys and alert links:
# a safe alphabet (no "/", no whitespace, no "%") keeps them inert in every one of those places.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Identifier = Annotated[
    str,
    StringConstraints(pattern=IDENTIFIER_PATTERN),
    Field(description="letters, digits and _ . : - (starting with a letter or digit), 1-64"),
]
# A product code as the CRM spells it: never part of a URL or key, so "/" is allowed.
Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$"),
]
MONEY_PATTERN = r"^[0-9]{1,14}(\.[0-9]{1,2})?$"
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=16, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": MONEY_PATTERN},
                {"type": "number", "minimum": 0, "maximum": 99_999_999_999_999, "multipleOf": 0.01},
            ],
            "description": "an amount >= 0 with at most 2 decimals, best sent as a string",
        }
    ),
]


def _not_a_number(value: object) -> object:
    if isinstance(value, int | float):
        raise ValueError("send a date-time string with its offset (RFC 3339), not a number")
    return value


# An RFC 3339 string with its offset; never a bare number (lax parsing took 0 for 1970).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class StrictModel(BaseModel):
    """Base for boundary models: no unknown fields, frozen once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class OrderType(StrEnum):
    NEW = "new"
    REPEAT = "repeat"
    RETURN = "return"


class ShippingMethod(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    SAME_DAY = "same_day"
    PICKUP = "pickup"


class PaymentMethod(StrEnum):
    CARD = "card"
    ALIPAY = "alipay"
    WECHAT_PAY = "wechat_pay"
    BANK_TRANSFER = "bank_transfer"
    CASH_ON_DELIVERY = "cash_on_delivery"
    OTHER = "other"


class Customer(StrictModel):
    id: Identifier
    name: ShortText
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    phone: (
        Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()-]{5,32}$")] | None
    ) = None
    company: ShortText | None = None
    vip: StrictBool = False


class OrderLine(StrictModel):
    sku: Sku
    name: ShortText
    category: ShortText
    quantity: int = Field(ge=1, le=100_000)
    unit_price: Money


class Pricing(StrictModel):
    currency: CurrencyCode = "CNY"
    total: Money
    discount: Money = Decimal("0")
    shipping_fee: Money = Decimal("0")
    tax: Money = Decimal("0")


class Payment(StrictModel):
    method: PaymentMethod
    paid_at: Timestamp | None = None


class Shipping(StrictModel):
    method: ShippingMethod = ShippingMethod.STANDARD
    province: ShortText | None = None
    city: ShortText | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class Order(StrictModel):
    """One order. ``order_no`` is unique: the key for tracking, de-duplication and audit."""

    order_no: Identifier
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_ORDER_LINES)
    pricing: Pricing
    payment: Payment | None = None
    status: OrderStatus = OrderStatus.PENDING
    order_type: OrderType | None = None
    sales_rep: ShortText | None = None
    shipping: Shipping = Field(default_factory=Shipping)
    requested_delivery_at: Timestamp | None = None
    channel: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = "web"
    notes: Annotated[str, StringConstraints(max_length=MAX_NOTES_LENGTH)] = ""
    created_at: Timestamp
    updated_at: Timestamp | None = None

    @model_validator(mode="after")
    def _updated_not_before_created(self) -> "Order":
        if self.updated_at is not None and self.updated_at < self.created_at:
            raise ValueError("updated_at must not be earlier than created_at")
        return self

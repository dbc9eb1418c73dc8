"""Order searches: query parameters into MongoDB filters, stable cursor pages and the row a page
lists. Pure."""

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from shared.models import OrderStatus
from shared.money import cents_text, to_cents
from shared.stored_order import currency_of
from shared.stored_tags import DEFAULT_RULE

TagName = Annotated[str, Field(min_length=1, max_length=64)]
MAX_TAGS_IN_FILTER = 50
AMOUNT_PATTERN = r"^\d{1,14}(\.\d{1,2})?$"  # currency units, at most 2 decimal places
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def _amount_text(value: object) -> object:
    """An amount is sent as a decimal string (``"1200.50"``), as documented: not a float."""
    if isinstance(value, str) and not re.fullmatch(AMOUNT_PATTERN, value):
        raise ValueError("give an amount such as 1200.50 (at most 2 decimal places)")
    if not isinstance(value, (str, Decimal)):
        raise ValueError('give the amount as a string such as "1200.50"')
    return value


def _instant_text(value: object) -> object:
    """An instant is an RFC 3339 date-time with its offset, not a number of seconds."""
    if isinstance(value, str) and not RFC3339.fullmatch(value):
        raise ValueError("give a date-time with its offset, e.g. 2026-11-01T00:00:00+08:00")
    if not isinstance(value, (str, datetime)):
        raise ValueError("give the date-time as a string")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    Field(ge=0, max_digits=16, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["1200.50"]}),
]


def _storable(value: datetime) -> datetime:
    """A moment MongoDB can hold: in UTC within the years 1 to 9999 (9999-12-31T23:00-05:00 is
    in year 10000 there, which no BSON date encodes: a 422 naming the field, not a 500)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("give a valid date-time within the years 1 to 9999 in UTC") from None
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_instant_text),
    AfterValidator(_storable),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def family_condition(family: str) -> list[dict[str, Any]]:
    """Orders holding a tag of ``family`` or named ``family:value``: tags are named by their
    family so (the rules' ``tag_from`` prefixes), and a rule tag so named by the rule named as
    its family stores neither family nor rule (``shared/stored_tags.py``); a rule tag whose
    rule's id names its family (``customer.returning``, ``default.priority``) stores that id
    as ``rule`` and no family (``family_of_rule``). A tag outside the family named with its
    prefix (a free tag ``status:escalated``) lists under it too."""
    escaped = re.escape(family)
    condition: list[dict[str, Any]] = [
        {"tags.family": family},
        {"tag_names": {"$regex": f"^{escaped}:"}},
        {"tags.rule": f"{DEFAULT_RULE}.{family}"},
    ]
    if family != DEFAULT_RULE:  # default.<family> names <family>, not "default"
        condition.append({"tags.rule": {"$regex": f"^{escaped}\\."}})
    return condition


class SortKey(StrEnum):
    NEWEST = "-created_at"
    OLDEST = "created_at"
    LARGEST = "-amount"
    SMALLEST = "amount"


class OrderFilter(BaseModel):
    """Which orders: every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all_tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS_IN_FILTER)
    any_tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS_IN_FILTER)
    none_tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS_IN_FILTER)
    family: Annotated[str, Field(max_length=32)] | None = None
    status: OrderStatus | None = None
    customer_id: Annotated[str, Field(max_length=64)] | None = None
    region: Annotated[str, Field(max_length=32)] | None = None
    amount_min: Amount | None = None
    amount_max: Amount | None = None
    created_from: Instant | None = None
    created_to: Instant | None = None

    @model_validator(mode="after")
    def _ranges(self) -> "OrderFilter":
        if (
            self.amount_min is not None
            and self.amount_max is not None
            and (self.amount_min > self.amount_max)
        ):
            raise ValueError("amount_min must not exceed amount_max")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from must not be after created_to")
        return self

    def to_mongo(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        tag_conditions: dict[str, Any] = {}
        if self.all_tags:
            tag_conditions["$all"] = self.all_tags
        if self.any_tags:
            tag_conditions["$in"] = self.any_tags
        if self.none_tags:
            tag_conditions["$nin"] = self.none_tags
        if tag_conditions:
            query["tag_names"] = tag_conditions
        if self.family:
            query["$or"] = family_condition(self.family)
        for field, value in (
            ("status", self.status),
            ("customer_id", self.customer_id),
            ("region", self.region),
        ):
            if value is not None:
                query[field] = value.value if isinstance(value, OrderStatus) else value
        amount: dict[str, int] = {}
        if self.amount_min is not None:
            amount["$gte"] = to_cents(self.amount_min)
        if self.amount_max is not None:
            amount["$lte"] = to_cents(self.amount_max)
        if amount:
            query["amount_cents"] = amount
        created: dict[str, datetime] = {}
        if self.created_from:
            created["$gte"] = self.created_from
        if self.created_to:
            created["$lt"] = self.created_to
        if created:
            query["created_at"] = created
        return query


class BadCursor(ValueError):
    """The cursor was not made by this API for this sort order."""


INT64_MAX = 2**63 - 1
TAG_KEY_SEPARATOR = "\x1f"  # never in a tag name (control characters are refused)


def tag_key(tag: str, order_no: str) -> str:
    """One (tag, order) pair as a string unique to that order."""
    return f"{tag}{TAG_KEY_SEPARATOR}{order_no}"


def tag_keys(order_no: str, tag_names: list[str]) -> list[str]:
    """What an order stores in ``tag_keys`` on the local server (``unique_indexes_only``): one key
    per tag it carries (an order without tags stores no ``tag_keys``: a unique index would hold
    an empty array as one key shared by every such order).

    Why: a store that can only look documents up by exact values of a unique index (the
    local mongo-java-server) finds which of N candidate orders carry a tag with one
    ``tag_keys $in`` of N keys, reading only the orders that do; without it, all N are read
    (several times dearer a candidate). MongoDB answers the same lookup from the
    ``(tag_names, created_at)`` index, so there the field is not stored."""
    return [tag_key(tag, order_no) for tag in sorted(set(tag_names))]


def _cents(value: object) -> int:
    """An amount position from a cursor: an integer MongoDB can store (BSON int64), not a float
    such as ``Infinity`` or a number past 2^63."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("the amount position must be an integer number of cents")
    if not -INT64_MAX <= value <= INT64_MAX:
        raise ValueError("the amount position is out of range")
    return value


def sort_spec(sort: SortKey) -> list[tuple[str, int]]:
    field = "amount_cents" if sort in (SortKey.LARGEST, SortKey.SMALLEST) else "created_at"
    direction = -1 if sort.value.startswith("-") else 1
    return [(field, direction), ("order_no", direction)]  # order_no: the tie-breaker


def encode_cursor(sort: SortKey, document: dict[str, Any]) -> str:
    field = sort_spec(sort)[0][0]
    value = document[field]
    value = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps({"s": sort.value, "v": value, "o": document["order_no"]})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def after_cursor(sort: SortKey, cursor: str) -> dict[str, Any]:
    """The filter for everything strictly after the cursor's position in ``sort`` order."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if data["s"] != sort.value:
            raise BadCursor("the cursor belongs to another sort order")
        (field, direction), _ = sort_spec(sort)
        value = datetime.fromisoformat(data["v"]) if field == "created_at" else _cents(data["v"])
        order_no = str(data["o"])
    except (ValueError, KeyError, TypeError, OverflowError) as error:
        raise BadCursor(f"invalid cursor: {error}") from None
    beyond = "$lt" if direction < 0 else "$gt"
    return {"$or": [{field: {beyond: value}}, {field: value, "order_no": {beyond: order_no}}]}


LISTED_FIELDS = {
    "_id": 0,
    "order_no": 1,
    "customer_id": 1,
    "order.customer.name": 1,
    "status": 1,
    "amount_cents": 1,
    "currency": 1,
    "region": 1,
    "created_at": 1,
    "tag_names": 1,
}


def listed(document: dict[str, Any]) -> dict[str, Any]:
    """An order as a list row: the amount in currency units, not cents; the customer's name
    beside the id (staff look for people by name)."""
    cents = document.pop("amount_cents", 0)
    document["amount"] = cents_text(cents)
    document["currency"] = currency_of(document)
    customer = document.pop("order", {}).get("customer") or {}
    document["customer_name"] = customer.get("name")
    return document

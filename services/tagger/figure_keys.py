"""Where the customer figures live in Redis, and what a figures script call carries: the
operations (apply an order, reverse it), their keys and arguments, the totals read back.

Every key of one customer shares the hash tag ``{customer_id}`` (one Redis Cluster slot); the
"figures loaded" epoch marker is one key per hash slot, so a script checks the marker of the
customer's own slot in the same call. Pure: no I/O.
"""

import functools
import json
from binascii import crc_hqx
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from shared.models import Order
from shared.money import to_cents

SECONDS_PER_DAY = 86_400
WINDOW_DAYS = 365
# The recent orders a customer's figures give (bursts, orders in a window, the mean gap between
# them: the newest ones read), and how many Redis keeps (``figures.lua`` trims there). More kept
# than read leave a margin for reversals: an order trimmed away never comes back, so with none
# a customer's newest orders cancelled after older ones were trimmed read fewer than a rebuild
# from MongoDB gives. 127 kept: the script adds an order before it trims, so the set holds one
# more for a moment, and Redis's default ``zset-max-listpack-entries`` is 128: one entry past it
# and the set becomes a skiplist for good (~12-16 KB a customer against ~5 KB; 100 kept: 3.6 KB).
# Expand, then contract (``docs/architecture.md``): the newest 100 are read since the release
# of 2026-11-27 (night), and 127 kept since the release after it; a release
# before the night's read every one. Off only where a test keeps what the night's release kept.
KEEP_RECENT_ORDERS = 100
RECENT_ORDERS_WITH_MARGIN = 127
WRITE_RECENT_MARGIN = True


def recent_orders_stored() -> int:
    """How many of a customer's recent orders ``figures.lua`` keeps (``WRITE_RECENT_MARGIN``)."""
    return RECENT_ORDERS_WITH_MARGIN if WRITE_RECENT_MARGIN else KEEP_RECENT_ORDERS


CONTRIBUTION_TTL_S = 400 * SECONDS_PER_DAY  # longer than any Kafka retention a replay comes from
EPOCH_PREFIX = "ot:figures:epoch:"  # + "{tag}": one marker per hash slot (``epoch_key``)
SINGLE_EPOCH_KEY = "ot:figures:epoch"  # the one marker of earlier versions: dropped by a rebuild
REBUILD_LOCK_KEY = "ot:figures:rebuild-lock"
FIGURE_KEYS = "ot:{*"  # every customer's keys (the epoch markers and the lock are outside it)


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """A hash tag for each of the 16,384 slots: the first hex numbers to land on each (about
    170,000 CRC16s, once per process; a brace-free key's slot is its CRC16, as ``key_slot``)."""
    found: dict[int, str] = {}
    number = 0
    while len(found) < REDIS_CLUSTER_HASH_SLOTS:
        tag = format(number, "x")
        found.setdefault(crc_hqx(tag.encode(), 0) % REDIS_CLUSTER_HASH_SLOTS, tag)
        number += 1
    return tuple(found[slot] for slot in range(REDIS_CLUSTER_HASH_SLOTS))


def epoch_key(slot: int) -> str:
    """The epoch marker of one hash slot: a key of that very slot, so the figures script can
    check it beside a customer's keys (one slot per call, as Redis Cluster requires)."""
    return f"{EPOCH_PREFIX}{{{slot_tags()[slot]}}}"


def epoch_keys() -> list[str]:
    """Every slot's marker: what a rebuild writes (and what a flushed Redis has lost)."""
    return [epoch_key(slot) for slot in range(REDIS_CLUSTER_HASH_SLOTS)]


def slot_of(customer_id: str) -> int:
    """The hash slot of the customer's keys (they share the tag ``{customer_id}``)."""
    return key_slot(keys_of(customer_id)[1].encode())


def order_items(order: dict[str, Any]) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """An order's (stored or live) line cents per category and its SKUs, in a stable order so a
    redelivered order passes the script exactly the same items."""
    cents: dict[str, int] = {}
    for line in order["lines"]:
        category = str(line["category"]).strip().lower()
        cents[category] = cents.get(category, 0) + to_cents(
            Decimal(str(line["unit_price"])) * int(line["quantity"])
        )
    skus = sorted({str(line["sku"]) for line in order["lines"]})
    return tuple(sorted(cents.items())), tuple(skus)


def keys_of(customer_id: str, order_no: str = "") -> list[str]:
    """Every key of one customer shares the hash tag ``{customer_id}``: one Redis Cluster slot."""
    tag = f"ot:{{{customer_id}}}"
    return [
        f"{tag}:order:{order_no}",
        f"{tag}:totals",
        f"{tag}:by-day",
        f"{tag}:recent",
        f"{tag}:by-category",
        f"{tag}:products",
    ]


def script_keys(customer_id: str, order_no: str) -> list[str]:
    return [f"ot:{{{customer_id}}}:order:{order_no}", *_customer_script_keys(customer_id)]


@functools.lru_cache(maxsize=65_536)
def _customer_script_keys(customer_id: str) -> tuple[str, ...]:
    """A customer's keys after the order's, and its slot's marker (a customer orders again:
    built once, not a CRC16 and six strings per order)."""
    return (*keys_of(customer_id)[1:], epoch_key(slot_of(customer_id)))


# json.dumps with options builds an encoder per call: these are built once
_compact_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_compact_ascii = json.JSONEncoder(separators=(",", ":")).encode


def contribution_args(
    order_no: str,
    cents: int,
    ts: float,
    category_cents: tuple[tuple[str, int], ...],
    skus: tuple[str, ...],
) -> list[Any]:
    day = int(ts // SECONDS_PER_DAY)
    return [
        order_no,
        cents,
        repr(ts),
        day,
        WINDOW_DAYS,
        KEEP_RECENT_ORDERS,
        recent_orders_stored(),
        CONTRIBUTION_TTL_S,
        # compact and sorted: the script compares an update's items with the stored ones
        _compact_text(dict(category_cents)),
        _compact_ascii(list(skus)),
    ]


@dataclass(frozen=True, slots=True)
class Apply:
    customer_id: str
    order_no: str
    amount: Decimal
    created_at: datetime
    # line cents per category (lower-cased) and the SKUs bought: customer preferences
    category_cents: tuple[tuple[str, int], ...] = ()
    skus: tuple[str, ...] = ()

    @classmethod
    def of_order(cls, order: Order) -> "Apply":
        lines = [  # what order_items reads, without dumping the whole order
            {
                "category": line.category,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
                "sku": line.sku,
            }
            for line in order.lines
        ]
        category_cents, skus = order_items({"lines": lines})
        return cls(
            order.customer.id,
            order.order_no,
            order.pricing.total,
            order.created_at,
            category_cents,
            skus,
        )


@dataclass(frozen=True, slots=True)
class Reverse:
    customer_id: str
    order_no: str


@dataclass(frozen=True, slots=True)
class CustomerTotals:
    """The customer's live figures (what ``figures rebuild`` must reproduce)."""

    order_count: int
    lifetime_spend: Decimal
    first_order_at: float | None
    last_order_at: float | None
    spend_by_day: dict[int, Decimal]
    recent_orders: dict[str, float]

"""Reading customers' live figures from Redis (what ``figures.lua`` keeps), one round trip."""

from collections.abc import Sequence

from services.tagger.figures import CustomerFigures, FiguresRedis
from services.tagger.rules.customer_facts import LiveFigures


async def read_live(redis: FiguresRedis, customer_ids: Sequence[str]) -> dict[str, LiveFigures]:
    """The customers' figures now. Raises ``FiguresLost`` when Redis does not hold them on a
    customer's slot (flushed, a master that lost its data, or a rebuild under way): empty
    figures would take every tag away from these customers. Each customer is read in one
    script call with its slot's epoch marker (one instant, one slot: Redis Cluster too)."""
    replies = await CustomerFigures(redis).read(customer_ids)
    live = {}
    for customer_id, reply in zip(customer_ids, replies, strict=True):
        totals, by_day, recent, by_category, products = (_pairs(r) for r in reply)
        live[customer_id] = LiveFigures(
            orders=int(totals.get(b"count", 0)),
            spend_cents=int(totals.get(b"spend", 0)),
            first_order_at=float(totals[b"first_at"]) if b"first_at" in totals else None,
            last_order_at=float(totals[b"last_at"]) if b"last_at" in totals else None,
            spend_by_day={int(d): int(c) for d, c in by_day.items() if int(c) != 0},
            recent_order_times=tuple(float(score) for score in recent.values()),
            by_category=_categories(by_category),
            products=_products(products),
        )
    return live


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _categories(raw: dict[bytes, bytes]) -> dict[tuple[int, str], tuple[int, int]]:
    found: dict[tuple[int, str], list[int]] = {}
    for key, value in raw.items():
        kind, day, category = key.decode().split("|", 2)
        entry = found.setdefault((int(day), category), [0, 0])
        entry[0 if kind == "o" else 1] = int(value)
    return {key: (orders, cents) for key, (orders, cents) in found.items()}


def _products(raw: dict[bytes, bytes]) -> dict[str, tuple[int, float]]:
    """SKU -> (held orders with it, the first one's creation time)."""
    found = {}
    for sku, value in raw.items():
        times = [float(t) for t in value.decode().split(",") if t]
        if times:
            found[sku.decode()] = (len(times), min(times))
    return found

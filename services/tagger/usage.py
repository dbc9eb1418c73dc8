"""What the Tags and Rules pages count over every order and customer: how many carry each tag,
and how many carry a tag each rule gave. Kept for a while (``shared.kept_counts``)."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from services.tagger.customers.segments import Segments
from services.tagger.read_model import ReadModel
from shared.kept_counts import KeptCount
from shared.stored_tags import rule_id_of


@dataclass(frozen=True, slots=True)
class TagUsage:
    orders: dict[str, int]  # tag -> orders carrying it
    customers: dict[str, int]  # tag -> customers carrying it


@dataclass(frozen=True, slots=True)
class RuleHits:
    orders: dict[str, int]  # order rule -> orders carrying a tag it gave ("manual": people's)
    customers: dict[str, int]  # customer rule -> customers carrying a tag it gave


def kept_tag_usage(
    read_model: ReadModel, segments: Segments, max_age_s: float
) -> KeptCount[TagUsage]:
    async def count() -> TagUsage:
        return TagUsage(await read_model.tag_usage(), await segments.tag_usage())

    return KeptCount(count, max_age_s)


def kept_rule_hits(database: Any, segments: Segments, max_age_s: float) -> KeptCount[RuleHits]:
    async def count() -> RuleHits:
        orders = {row["rule_id"]: row["orders"] for row in await rule_hit_counts(database)}
        return RuleHits(orders, await segments.customers_per_rule())

    return KeptCount(count, max_age_s)


async def rule_hit_counts(database: Any) -> list[dict[str, Any]]:
    """Grouped by what a stored tag says of its rule, and its name: a compact tag names no
    rule where the rule is named as its family, nor the family where its name holds both
    (``status:pending``), and names it as ``rule`` where the rule's id names the family
    (``shared.stored_tags.rule_id_of``). Tag names are few (a catalog's
    and the values of a few facts), so the groups stay few."""
    rows = await (
        await database["orders"].aggregate(
            [
                {"$unwind": {"path": "$tags", "includeArrayIndex": "position"}},
                {
                    "$group": {
                        "_id": {
                            "rule_id": "$tags.rule_id",
                            "rule": "$tags.rule",
                            "family": "$tags.family",
                            "source": "$tags.source",
                            "name": {"$arrayElemAt": ["$tag_names", "$position"]},
                        },
                        "orders": {"$sum": 1},
                    }
                },
            ]
        )
    ).to_list(None)
    hits: Counter[str] = Counter()
    for row in rows:
        hits[rule_id_of(row["_id"], row["_id"].get("name")) or "manual"] += row["orders"]
    ranked = sorted(hits.items(), key=lambda hit: (-hit[1], hit[0]))
    return [{"rule_id": rule_id, "orders": orders} for rule_id, orders in ranked]

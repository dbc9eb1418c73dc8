"""The customer-tagging use case: keep customers' tags current from their live figures.

Called after each batch of order events is tagged (the customers it touched), by the jobs
role's sweep (customers whose tags time alone may change: lapsed, windows) and by a person
adding or removing a tag. Every evaluation starts from the figures Redis holds now, which are
exact under replay and in any order of events, so evaluating twice gives the same tags.
"""

import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime

import structlog

from services.tagger.customers.live_figures import read_live
from services.tagger.customers.model import (
    CustomerRecord,
    TagChange,
    history_entries,
    merge_customer_tags,
    next_review_at,
    review_thresholds,
)
from services.tagger.customers.products import ProductSale
from services.tagger.customers.store import CustomerStore, figures_fields
from services.tagger.errors import Conflict, Invalid, NotFound
from services.tagger.figures import FiguresLost
from services.tagger.rules.book import RuleBook
from services.tagger.rules.customer_engine import decide_customer
from services.tagger.rules.customer_facts import (
    CustomerProfile,
    LiveFigures,
    category_items,
    customer_facts,
    sku_items,
)
from services.tagger.rules.schema import TAG_NAME, RuleSet
from shared.events import AppliedTag, OrderCreated, OrderUpdated, StatusChanged, TagSource
from shared.redis import AnyRedis

log = structlog.get_logger("tagger.customers")

MAX_ATTEMPTS = 5
SWEEP_BATCH = 500
Clock = Callable[[], float]
OrderEvent = OrderCreated | OrderUpdated | StatusChanged


def customer_rules_version(rules: RuleSet) -> str:
    """The customer rules' own version: an edit of order rules re-evaluates no customer."""
    text = json.dumps(
        [rule.model_dump(mode="json", by_alias=True) for rule in rules.customer_rules],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class CustomerTagging:
    def __init__(
        self,
        rules: RuleBook,
        store: CustomerStore,
        redis: AnyRedis,
        clock: Clock = time.time,
        *,
        reload_figures: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``reload_figures(reason)`` rebuilds the figures Redis lost (or waits for the rebuild
        another process runs); without it, lost figures raise ``FiguresLost``."""
        self._rules = rules
        self._store = store
        self._redis = redis
        self._clock = clock
        self._reload_figures = reload_figures
        self._rules_seen: str | None = None

    async def after_orders(self, events: Sequence[OrderEvent]) -> None:
        """Re-evaluate the customers of a tagged batch (their figures moved), noting what the
        orders say about them (name, company, VIP) and about each product (first sale, name)."""
        profiles: dict[str, tuple[datetime, CustomerProfile]] = {}
        sold: dict[str, ProductSale] = {}
        for event in events:
            if isinstance(event, StatusChanged):
                continue
            order = event.order
            seen = profiles.get(order.customer.id)
            if seen is None or order.created_at >= seen[0]:
                profiles[order.customer.id] = (
                    order.created_at,
                    CustomerProfile(
                        order.customer.name, order.customer.company, order.customer.vip
                    ),
                )
            ts = order.created_at.timestamp()
            for line in order.lines:
                seen_sku = sold.get(line.sku)
                sold[line.sku] = (
                    ProductSale.on_order(ts, line.name)
                    if seen_sku is None
                    else seen_sku.and_order(ts, line.name)
                )
        await self.refresh({event.customer_id for event in events}, profiles, sold)

    async def refresh(
        self,
        customer_ids: Iterable[str],
        profiles: dict[str, tuple[datetime, CustomerProfile]] | None = None,
        sold: dict[str, ProductSale] | None = None,
    ) -> int:
        """Evaluate the customers' rules now and store what changed; returns how many were
        evaluated to the end (stored, or found unchanged). A write that lost a race is
        evaluated again on what the winner stored.
        ``sold``: the products of the orders behind the evaluation (SKU -> sale), recorded
        where they change the stored ones (an earlier first sale, a newer name)."""
        pending = sorted(set(customer_ids))
        written = 0
        for _ in range(MAX_ATTEMPTS):
            if not pending:
                return written
            lost = await self._attempt(pending, profiles or {}, sold or {})
            sold = None  # recorded by the first attempt
            written += len(pending) - len(lost)
            pending = lost
        raise Conflict(f"customers kept changing under evaluation: {pending[:10]}")

    async def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Evaluate the customers due for review (a lapse threshold crossed, an order leaving a
        window, the customer rules changed); returns how many were due."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        version = customer_rules_version(self._rules.current)
        if version != self._rules_seen:
            if await self._store.rules_changed(version):
                marked = await self._store.mark_all_due(now)
                log.info("customer_rules_changed", version=version, customers=marked)
            self._rules_seen = version
        due = await self._store.due(now, limit)
        if due:
            await self.refresh(due)
            log.info("customers_reviewed", customers=len(due))
        return len(due)

    async def _attempt(
        self,
        customer_ids: list[str],
        profiles: dict[str, tuple[datetime, CustomerProfile]],
        sold: dict[str, ProductSale],
    ) -> list[str]:
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        try:
            live = await read_live(self._redis, customer_ids)
        except FiguresLost as lost:
            if self._reload_figures is None:
                raise
            log.warning("figures_lost", reason=lost.reason, customers=len(customer_ids))
            await self._reload_figures(lost.reason)
            live = await read_live(self._redis, customer_ids)
        records = await self._store.load(customer_ids)
        first_sales = await self._store.first_sales_with(
            (sku for figures in live.values() for sku in figures.products), sold
        )
        writes = []
        thresholds = review_thresholds(self._rules.current.customer_rules)
        for customer_id in customer_ids:
            record = records.get(customer_id) or CustomerRecord(customer_id)
            if (seen := profiles.get(customer_id)) and (
                record.profile_at is None or seen[0] >= record.profile_at
            ):
                record.profile_at, record.profile = seen
            figures = live[customer_id]
            if record.version == 0 and figures.first_order_at is None:
                continue  # no order of theirs counted (a refused status change): no customer
            change, top = self._evaluate(record, figures, first_sales, now, at)
            record.tags = change.tags
            fields = figures_fields(figures, now, top)
            fields["evaluated_at"] = at
            fields["next_review_at"] = next_review_at(figures, thresholds, now)
            history = history_entries(change, at)
            if history or not self._store.changes_nothing(record, fields):
                writes.append((record, fields, history))
        return sorted(await self._store.save_many(writes))

    def _evaluate(
        self,
        record: CustomerRecord,
        figures: LiveFigures,
        first_sales: dict[str, float],
        now: float,
        at: datetime,
    ) -> tuple[TagChange, str | None]:
        rules = self._rules.current
        categories = category_items(figures, now)
        decisions = decide_customer(
            rules.customer_rules,
            customer_facts(figures, record.profile, now),
            {"category": categories, "sku": sku_items(figures, first_sales)},
            family_of=rules.tag_families,
            exclusive=rules.exclusive_families,
        )
        change = merge_customer_tags(
            record.tags, decisions, exclusive=rules.exclusive_families, at=at
        )
        top = max(categories, key=lambda c: c["category.spend_365d"], default=None)
        return change, top["category"] if top else None

    async def tag_by_hand(
        self, customer_id: str, tag: str, *, by: str, reason: str, remove: bool = False
    ) -> AppliedTag | None:
        """Add (or remove) a manual tag on a customer; the history names the person. A tag a
        rule gives follows the rule: it cannot be removed by hand."""
        if not re.fullmatch(TAG_NAME, tag):
            raise Invalid("tag", f"{tag!r} is not a tag name (lower case a-z 0-9 : _ . -)")
        for _ in range(MAX_ATTEMPTS):
            records = await self._store.load([customer_id])
            record = records.get(customer_id)
            if record is None:
                raise NotFound(f"no customer {customer_id!r}")
            at = datetime.fromtimestamp(self._clock(), UTC)
            current = {t.name: t for t in record.tags}
            if remove:
                if tag not in current:
                    raise NotFound(f"customer {customer_id!r} has no tag {tag!r}")
                gone = current[tag]
                if gone.source is TagSource.RULE:
                    raise Conflict(
                        f"tag {tag!r} is given by rule {gone.rule_id} (v{gone.rule_version}) "
                        "and follows it; change the rule instead"
                    )
                change = TagChange([t for t in record.tags if t.name != tag], [], [gone])
                applied = None
            else:
                if tag in current and current[tag].source is TagSource.MANUAL:
                    return current[tag]
                entry = self._rules.current.catalog.get(tag)
                applied = AppliedTag(
                    name=tag,
                    family=entry.family if entry else None,
                    source=TagSource.MANUAL,
                    by=by,
                    reason=reason or f"set by {by}",
                    at=at,
                )
                kept = [t for t in record.tags if t.name != tag]
                change = TagChange([*kept, applied], [applied], [])
            record.tags = change.tags
            if await self._store.save(record, {}, history_entries(change, at, by=by)):
                return applied
        raise Conflict(f"customer {customer_id!r} kept changing; try again")

"""An order as the tagger keeps it, and its stored form: the order document (``OrderRecord``)
and a change of its tags (``HistoryEntry``), as ``store.OrderStore`` writes and reads them.

Tags and history entries are stored compact (``shared/stored_tags.py`` says how, and reads
them back in full, the earlier full form too).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.tagger.queries import tag_keys
from services.tagger.rules.facts import FiguresSnapshot, order_facts
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.regions import region_of
from shared.events import AppliedTag, to_millisecond
from shared.models import Order, OrderStatus
from shared.money import to_cents
from shared.stored_history import first_change_at
from shared.stored_order import (
    applied_event_ids,
    beside_the_order,
    figures_record,
    order_as_ingested,
    stored_currency,
    stored_event_ids,
    stored_figure_names,
)
from shared.stored_tags import TagDefaults, order_tags, stored_tag

APPLIED_EVENTS_KEPT = 50
# An order's fields left out when empty, false or not needed (``OrderRecord.to_document``)
SOMETIMES_STORED = (
    "tags_at",
    "tags_rule_version",
    "tag_keys",
    "contribution_reversed",
    "currency",  # none for the default currency (``shared.stored_order.stored_currency``)
)


@dataclass(slots=True)
class OrderRecord:
    """An order as the tagger keeps it: the order, its tags and the figures it was tagged with."""

    order: Order
    status: OrderStatus
    tags: list[AppliedTag]
    figures: FiguresSnapshot
    contribution_reversed: bool = False
    applied_events: list[str] = field(default_factory=list)
    version: int = 0  # 0: not stored yet
    stored: dict[str, Any] | None = None  # the document as read: an update sets what changed
    # when the order's first change was made (its event: the first of ``applied_events``):
    # that change has no history entry of its own (``shared.stored_history.with_first_change``)
    first_at: datetime | None = None
    # the facts its rules were decided on (not stored): a tag's reason values they give again
    # are left out of the stored tag (``shared.stored_tags.derived_args``); None: worked out
    # from the order when first needed. A copy with another order, status or figures: None
    facts: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def to_document(
        self, templates: ReasonTemplates | None = None, *, keyed: bool = False
    ) -> dict[str, Any]:
        """The stored form. The order keeps only the fields that are set and differ from
        their defaults (``Order`` fills them in again), and not its number, customer id and
        (mostly) creation time (``shared/stored_order.py``): they sit beside it for the
        indexes and lists with ``status``, amount and region; the tags compact
        (``shared/stored_tags.py``), their names in ``tag_names``. ``keyed``: with the order
        list's ``tag_keys`` (only the local server, which walks no index in order, needs
        them: ``unique_indexes_only``). Fields left out rather than stored empty or false."""
        order = self.order
        names = [tag.name for tag in self.tags]
        defaults = TagDefaults.of(self.tags)
        document: dict[str, Any] = {
            "order_no": order.order_no,
            "customer_id": order.customer.id,
            "order": order.model_dump(
                mode="json",
                exclude_none=True,
                exclude_defaults=True,
                exclude=beside_the_order(order.created_at),
            ),
            "status": self.status.value,
            "amount_cents": to_cents(order.pricing.total),
            **stored_currency(order.pricing.currency),
            "region": region_of(order.shipping.province),
            "created_at": order.created_at,
            "tags": [
                stored_tag(t, templates, name_key=None, defaults=defaults, facts=self._facts)
                for t in self.tags
            ],
            "tag_names": names,
            "figures": stored_figures(self.figures),
            "applied_events": stored_event_ids(kept_events(self.applied_events)),
            "version": self.version,
        }
        if defaults.at is not None:
            document["tags_at"] = defaults.at
        if self.first_at is not None:  # always: a release before it would lose it on update
            document["first_at"] = self.first_at
        if defaults.rule_version is not None:
            document["tags_rule_version"] = defaults.rule_version
        if keyed and names:  # none: left out (a unique index holds [] as one shared key)
            document["tag_keys"] = tag_keys(order.order_no, names)
        if self.contribution_reversed:
            document["contribution_reversed"] = True
        return document

    def _facts(self) -> dict[str, Any]:
        if self.facts is None:
            self.facts = order_facts(self.order, self.figures, self.status)
        return self.facts

    @classmethod
    def from_document(
        cls, document: dict[str, Any], templates: ReasonTemplates | None = None
    ) -> "OrderRecord":
        return cls(
            order=Order.model_validate(order_as_ingested(document)),
            status=OrderStatus(document["status"]),
            tags=order_tags(document, templates),
            figures=FiguresSnapshot.from_record(figures_record(document["figures"])),
            contribution_reversed=bool(document.get("contribution_reversed")),
            applied_events=applied_event_ids(document),
            version=int(document["version"]),
            stored=document,
            first_at=first_change_at(document),
        )

    def first_change_implied(self, entry: "HistoryEntry") -> bool:
        """Whether ``entry`` is this new order's first change, which the order itself keeps
        (its first applied event, at ``first_at``): then it is not written to the history."""
        return (
            self.version == 0
            and self.applied_events[:1] == [entry.event_id]
            and to_millisecond(entry.at) == self.first_at
            and not entry.removed
            and not entry.replaced
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of an order's tags: what one event (or one person) added and removed."""

    order_no: str
    event_id: str
    at: datetime
    added: list[AppliedTag]
    removed: list[AppliedTag]
    by: str | None = None
    # tags kept by name whose rule or rule version changed: as they were before
    replaced: list[AppliedTag] = field(default_factory=list)

    def to_document(
        self,
        templates: ReasonTemplates | None = None,
        version: int | None = None,
        step: int = 0,
    ) -> dict[str, Any]:
        """Compact (``shared/stored_tags.py``): added tags by name (none named by the order's
        first change, version 1 step 0: it added all the order then held), removed and
        replaced ones as they were; ``by`` only when a person made the change. ``version``
        and ``step`` order an order's entries as applied (event times need not be in that
        order)."""
        document: dict[str, Any] = {
            "order_no": self.order_no,
            "event_id": self.event_id,
            "at": self.at,
        }
        if not (version == 1 and step == 0):  # the first: added all the order then held
            document["added"] = [{"tag": tag.name} for tag in self.added]
        if self.removed:
            document["removed"] = [stored_tag(t, templates, name_key="tag") for t in self.removed]
        if self.replaced:
            document["replaced"] = [
                stored_tag(tag, templates, name_key="tag") for tag in self.replaced
            ]
        if self.by is not None:
            document["by"] = self.by
        if version is not None:
            document["version"] = version
        if step:
            document["step"] = step
        return document


def stored_figures(figures: FiguresSnapshot) -> dict[str, Any]:
    """The customer figures as stored with the order (``FiguresSnapshot.to_record``, under the
    shorter names of ``shared.stored_order.FIGURE_NAMES``), times in whole seconds as integers
    (BSON int32: half a double), and without the values a customer's first order has (no
    prior orders, spend or recent times; ``from_record`` reads them as absent): a first
    order's figures are then one field, not five."""
    record = figures.to_record()
    stored: dict[str, Any] = {"spend_365d_cents": record["spend_365d_cents"]}
    if record["prior_order_count"]:
        stored["prior_order_count"] = record["prior_order_count"]
    if record["prior_lifetime_cents"]:
        stored["prior_lifetime_cents"] = record["prior_lifetime_cents"]
    if record["recent_order_times"]:
        stored["recent_order_times"] = [_whole(t) for t in record["recent_order_times"]]
    if record["first_order_at"] is not None:
        stored["first_order_at"] = _whole(record["first_order_at"])
    return stored_figure_names(stored)


def kept_events(applied_events: list[str]) -> list[str]:
    """The applied event ids an order keeps: the first (its first change's, see
    ``OrderRecord.first_at``) and the latest."""
    if len(applied_events) <= APPLIED_EVENTS_KEPT:
        return applied_events
    return [applied_events[0], *applied_events[1 - APPLIED_EVENTS_KEPT :]]


def _whole(seconds: float | None) -> float | int | None:
    return int(seconds) if isinstance(seconds, float) and seconds.is_integer() else seconds


def update_of(document: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """The update of a stored order: ``$set`` the fields that differ from the document as it
    was read (``version`` always does), the others only if the upsert inserts (the document
    was removed meanwhile), so it is never stored in part; ``$unset`` the fields stored only
    sometimes that the document leaves out now."""
    if stored is None:
        return {"$set": document}
    changed, same = {}, {}
    for key, value in document.items():
        if stored.get(key) != value:
            changed[key] = value
        elif key != "order_no":
            same[key] = value
    update: dict[str, Any] = {"$set": changed}
    if same:
        update["$setOnInsert"] = same
    if gone := {key: "" for key in SOMETIMES_STORED if key in stored and key not in document}:
        update["$unset"] = gone
    return update

"""An order as the tagger stores it in its ``orders`` document, and as it was ingested.

The stored ``order`` leaves out what the document holds beside it for its indexes (issue #14:
bytes written per order): the order number (``order_no``) and the customer's id
(``customer_id``), ~60 bytes an order. Documents written before hold them in the order too and
read the same way.

The stored ``order`` leaves out its creation time too where the document's ``created_at``
gives it back exactly: in UTC, to the millisecond (a BSON date holds no more), ~37 bytes an
order (``beside_the_order``). An order sent with another offset (a shop's local
``+08:00``) keeps it, as every order did before. The release before this writer read both
forms (``order_as_ingested``, ``order_created_at``), so a rollback to it reads what this one
wrote (expand, then contract: ``docs/architecture.md``).
"""

import re
from datetime import datetime, timedelta
from typing import Any

from bson.binary import UUID_SUBTYPE, Binary
from pydantic import AwareDatetime, TypeAdapter

from shared.models import Pricing

# what ``Order.model_dump`` leaves out of the stored order (the document has them)
BESIDE_THE_ORDER: dict[str, Any] = {"order_no": True, "customer": {"id"}}
_WITH_ITS_TIME: dict[str, Any] = {**BESIDE_THE_ORDER, "created_at": True}
_TIME = TypeAdapter(AwareDatetime)
_UUID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Whether an order's applied event ids are stored as BSON UUIDs (16 bytes, not a 36-character
# string: ~20 B an event id). Expand, then contract (``docs/architecture.md``): read since the
# release of 2026-11-27 afternoon, written since the one after it, so a rollback to the first
# reads what this one writes. False writes strings, as before (the tests of reading them).
WRITE_BINARY_EVENT_IDS = True


# The customer figures an order was tagged with (``FiguresSnapshot.to_record``'s fields) under
# shorter names in the stored order: money in cents, times in epoch seconds (~31 B an order).
# Read since the release of 2026-11-27 evening, written since the one after it (expand, then
# contract: ``docs/architecture.md``); Redis keeps a snapshot under the long names.
FIGURE_NAMES = {
    "spend_365d_cents": "spend_365d",
    "prior_order_count": "prior_orders",
    "prior_lifetime_cents": "prior_spend",
    "recent_order_times": "recent",
    "first_order_at": "first_order",
}
_FIGURE_RECORD_NAMES = {short: name for name, short in FIGURE_NAMES.items()}
WRITE_SHORT_FIGURE_NAMES = True


def stored_figure_names(figures: dict[str, Any]) -> dict[str, Any]:
    """An order's figures (``FiguresSnapshot.to_record``'s names) as stored."""
    if not WRITE_SHORT_FIGURE_NAMES:
        return figures
    return {FIGURE_NAMES.get(name, name): value for name, value in figures.items()}


def figures_record(stored: dict[str, Any]) -> dict[str, Any]:
    """An order's stored figures (either form) under ``FiguresSnapshot.to_record``'s names, as
    ``FiguresSnapshot.from_record`` and the figures script read them."""
    return {_FIGURE_RECORD_NAMES.get(name, name): value for name, value in stored.items()}


DEFAULT_CURRENCY: str = Pricing.model_fields["currency"].default
# Whether an order's ``currency`` beside the order (for its lists) is left out when it is the
# default, as the stored ``order`` leaves it out (~18 B an order). Read since the release of
# 2026-11-27 evening, written since the one after it.
WRITE_CURRENCY_WHEN_NOT_DEFAULT = True


def stored_currency(currency: str) -> dict[str, str]:
    """The ``currency`` field of an order's document: none for the default currency."""
    if WRITE_CURRENCY_WHEN_NOT_DEFAULT and currency == DEFAULT_CURRENCY:
        return {}
    return {"currency": currency}


def currency_of(document: dict[str, Any]) -> str:
    """A stored order's currency (either form; a row of the order list too)."""
    return str(document.get("currency") or DEFAULT_CURRENCY)


def order_as_ingested(document: dict[str, Any]) -> dict[str, Any]:
    """The stored ``order`` with what the document holds beside it put back: its number, its
    customer's id and its creation time (as ``Order.model_dump(mode="json")`` gives it)."""
    order = document["order"]
    if "order_no" in order:  # written before they were left out
        return dict(order)
    customer = {"id": document["customer_id"], **(order.get("customer") or {})}
    restored = {"order_no": document["order_no"], **order, "customer": customer}
    if "created_at" not in order:
        restored["created_at"] = _TIME.dump_python(document["created_at"], mode="json")
    return restored


def beside_the_order(created_at: datetime) -> dict[str, Any]:
    """What ``Order.model_dump`` leaves out of an order created at ``created_at``: its creation
    time too when the document's (a BSON date, read back in UTC) gives it back as sent."""
    exact = created_at.utcoffset() == timedelta(0) and created_at.microsecond % 1000 == 0
    return _WITH_ITS_TIME if exact else BESIDE_THE_ORDER


def order_created_at(document: dict[str, Any]) -> datetime:
    """A stored order's creation time as the order had it (either form)."""
    created_at = document["order"].get("created_at")
    if created_at is None:
        return document["created_at"]  # type: ignore[no-any-return]
    return datetime.fromisoformat(created_at)


def stored_event_ids(event_ids: list[str]) -> list[str | Binary]:
    """An order's applied event ids as stored: each in a UUID's string form as a BSON UUID
    (``WRITE_BINARY_EVENT_IDS``), any other as it is."""
    if not WRITE_BINARY_EVENT_IDS:
        return list(event_ids)
    return [_as_binary(event_id) for event_id in event_ids]


def _as_binary(event_id: str) -> str | Binary:
    """A UUID's own string form (lower case, hyphens: it reads back the same) as a BSON UUID;
    matched, then its hex read (~1.4 µs an id; parsing a ``UUID`` and checking its string
    took ~3 µs, on every order written)."""
    if _UUID_FORM.fullmatch(event_id) is None:
        return event_id
    return Binary(bytes.fromhex(event_id.replace("-", "")), UUID_SUBTYPE)


def applied_event_ids(document: dict[str, Any]) -> list[str]:
    """A stored order's applied event ids (either form) as the events named them (a client
    decoding BSON UUIDs as ``UUID``s gives their string form too)."""
    return [
        str(event_id.as_uuid()) if isinstance(event_id, Binary) else str(event_id)
        for event_id in document.get("applied_events", ())
    ]

"""An order as the tagger stores it in its ``orders`` document, and as it was ingested.

The stored ``order`` leaves out what the document holds beside it for its indexes (issue #14:
bytes written per order): the order number (``order_no``) and the customer's id
(``customer_id``), ~60 bytes an order. Documents written before hold them in the order too and
read the same way.

A stored order without its creation time reads whole too, from the document's ``created_at``
(``order_as_ingested``, ``order_created_at``). This release still writes it: a release that
leaves it out where the document's gives it back exactly (UTC, whole milliseconds; ~37 bytes
an order) can then be rolled back to this one, which reads what it wrote. A release before
this one cannot, so that writer waits a release (expand, then contract).
"""

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter

# what ``Order.model_dump`` leaves out of the stored order (the document has them)
BESIDE_THE_ORDER: dict[str, Any] = {"order_no": True, "customer": {"id"}}
_TIME = TypeAdapter(AwareDatetime)


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


def order_created_at(document: dict[str, Any]) -> datetime:
    """A stored order's creation time as the order had it (either form)."""
    created_at = document["order"].get("created_at")
    if created_at is None:
        return document["created_at"]  # type: ignore[no-any-return]
    return datetime.fromisoformat(created_at)

"""An order as the tagger stores it in its ``orders`` document, and as it was ingested.

The stored ``order`` leaves out what the document holds beside it for its indexes: the order
number (``order_no``) and the customer's id (``customer_id``), ~60 bytes an order (issue #14).
Documents written before hold them in the order too and read the same way.
"""

from typing import Any

# what ``Order.model_dump`` leaves out of the stored order (the document has them)
BESIDE_THE_ORDER: dict[str, Any] = {"order_no": True, "customer": {"id"}}


def order_as_ingested(document: dict[str, Any]) -> dict[str, Any]:
    """The stored ``order`` with its number and customer id put back (from the document)."""
    order = document["order"]
    if "order_no" in order:  # written before they were left out
        return dict(order)
    customer = {"id": document["customer_id"], **(order.get("customer") or {})}
    return {"order_no": document["order_no"], **order, "customer": customer}

"""Products as the orders show them (``products``, one document per SKU): the first sale, for
early adopters, and the name, so a tag named from a product (``product:earbuds-06``) reads as
the product (偏好商品：无线耳机 (EARBUDS-06)); ``slug``, the SKU as tags name it, finds it.

A product is written when it is first seen, when an order shows an earlier sale, or when a
newer order calls it by another name; most batches write none. Both parts of the write
commute (``$min`` of the first sale, ``$max`` of when-named and name), so replays, late events
and two taggers at once end with the earliest sale and the newest order's name: an update of
an old order, carrying the name the product had then, changes nothing.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.tagger.rules.engine import tag_slug

PRODUCT_FACT = "sku"  # the fact a customer rule names a product by (product:<sku>, {sku})


def product_shown(name: str, sku: str) -> str:
    """A product as a reason shows it: 无线耳机 (EARBUDS-06), as its tag's label does (the label
    files' ``named`` words)."""
    return f"{name} ({sku})"


@dataclass(frozen=True, slots=True)
class ProductSale:
    """A product as a batch's orders show it: its earliest sale in them, and its name on the
    newest of them (``named_at``: that order's creation)."""

    first_sold_at: float
    name: str
    named_at: float

    @classmethod
    def on_order(cls, at: float, name: str) -> "ProductSale":
        return cls(at, name, at)

    def and_order(self, at: float, name: str) -> "ProductSale":
        """With another order's line of the product (an order created at ``at``)."""
        newer = (at, name) > (self.named_at, self.name)  # as MongoDB's $max orders them
        return ProductSale(
            min(self.first_sold_at, at),
            name if newer else self.name,
            at if newer else self.named_at,
        )

    def update(self, sku: str) -> dict[str, Any]:
        """The product's update: a commuting one (module docstring)."""
        return {
            "$min": {"first_sold_at": self.first_sold_at},
            "$max": {"named": {"at": self.named_at, "name": self.name}},
            "$set": {"slug": tag_slug(sku)},
        }


@dataclass(frozen=True, slots=True)
class StoredProduct:
    first_sold_at: float
    name: str | None = None  # None: stored before products kept their names
    named_at: float | None = None

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> "StoredProduct":
        named = document.get("named") or {}
        return cls(float(document["first_sold_at"]), named.get("name"), named.get("at"))

    def changed_by(self, sale: ProductSale) -> bool:
        """Whether storing ``sale`` changes the product: an earlier first sale, or a newer
        order's other name (a name at all, for a product stored without one)."""
        if sale.first_sold_at < self.first_sold_at:
            return True
        if self.name is None or self.named_at is None:
            return True
        return sale.name != self.name and (sale.named_at, sale.name) > (self.named_at, self.name)

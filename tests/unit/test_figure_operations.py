"""What an order passes to the figures script: its line cents per category and its SKUs."""

from services.tagger.figure_keys import Apply, order_items
from tests.factories import make_order


def test_an_orders_items_are_those_of_its_stored_form() -> None:
    order = make_order(
        lines=[
            {
                "sku": "B/2",
                "name": "a",
                "category": " Books ",
                "quantity": 3,
                "unit_price": "19.99",
            },
            {"sku": "A-1", "name": "b", "category": "books", "quantity": 1, "unit_price": "0.05"},
            {"sku": "B/2", "name": "c", "category": "家电", "quantity": 2, "unit_price": "4999"},
        ]
    )

    applied = Apply.of_order(order)

    assert (applied.category_cents, applied.skus) == order_items(order.model_dump(mode="json"))
    assert applied.category_cents == (("books", 6002), ("家电", 999800))
    assert applied.skus == ("A-1", "B/2")

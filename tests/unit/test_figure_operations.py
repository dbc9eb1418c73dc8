"""What an order passes to the figures script: its line cents per category and its SKUs."""

from services.tagger.figure_keys import (
    Apply,
    contribution_args,
    epoch_key,
    keys_of,
    order_items,
    script_keys,
    slot_of,
)
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


def test_a_script_call_names_the_orders_key_the_customers_keys_and_its_slots_marker() -> None:
    for _ in range(2):  # the customer's part is remembered: the same answer again
        keys = script_keys("C-1", "SO-9")

        assert keys == [*keys_of("C-1", "SO-9"), epoch_key(slot_of("C-1"))]


def test_a_contributions_items_travel_as_compact_sorted_json() -> None:
    args = contribution_args("SO-1", 1999, 86_400.5, (("books", 999), ("家电", 1000)), ("A", "B/2"))

    assert args[8:] == ['{"books":999,"家电":1000}', '["A","B/2"]']
    assert args[:4] == ["SO-1", 1999, "86400.5", 1]

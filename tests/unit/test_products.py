"""A product as the orders show it: the earliest sale and the newest order's name, whatever
order the orders come in; written only when that changes what is stored."""

import itertools

from services.tagger.customers.products import ProductSale, StoredProduct

ORDERS = [(30.0, "无线耳机"), (10.0, "耳机"), (20.0, "耳机 二代")]  # (created at, line's name)


def test_a_batch_keeps_the_earliest_sale_and_the_newest_name_in_any_order() -> None:
    for orders in itertools.permutations(ORDERS):
        (at, name), *rest = orders
        sale = ProductSale.on_order(at, name)
        for at, name in rest:
            sale = sale.and_order(at, name)
        assert sale == ProductSale(first_sold_at=10.0, name="无线耳机", named_at=30.0)


def test_a_stored_product_changes_for_an_earlier_sale_or_a_newer_name_only() -> None:
    stored = StoredProduct.of({"first_sold_at": 10.0, "named": {"at": 20.0, "name": "耳机"}})

    assert not stored.changed_by(ProductSale(10.0, "耳机", 40.0))  # a later sale, same name
    assert not stored.changed_by(ProductSale(15.0, "旧名", 15.0))  # an old order's old name
    assert stored.changed_by(ProductSale(5.0, "耳机", 20.0))  # an earlier first sale
    assert stored.changed_by(ProductSale(12.0, "无线耳机", 30.0))  # renamed since
    assert StoredProduct.of({"first_sold_at": 10.0}).changed_by(ProductSale(12.0, "耳机", 12.0))

"""The stored order leaves out what its document holds beside it, and reads back whole."""

from services.tagger.order_record import OrderRecord
from services.tagger.rules.facts import FiguresSnapshot
from shared.models import OrderStatus
from shared.stored_order import order_as_ingested
from tests.factories import make_order


def test_the_stored_order_holds_no_number_or_customer_id_and_reads_back_as_it_was() -> None:
    order = make_order("SO-9")
    record = OrderRecord(order, OrderStatus.PENDING, [], FiguresSnapshot())
    document = record.to_document()

    assert "order_no" not in document["order"]
    assert "id" not in document["order"]["customer"]
    assert (document["order_no"], document["customer_id"]) == ("SO-9", order.customer.id)
    assert OrderRecord.from_document(document).order == order
    assert list(order_as_ingested(document)) == [
        "order_no",
        *document["order"],
    ]


def test_an_order_stored_whole_before_reads_the_same() -> None:
    order = make_order("SO-8")
    document = OrderRecord(order, OrderStatus.PENDING, [], FiguresSnapshot()).to_document()
    document["order"] = order.model_dump(mode="json", exclude_none=True, exclude_defaults=True)

    assert order_as_ingested(document) == document["order"]
    assert OrderRecord.from_document(document).order == order

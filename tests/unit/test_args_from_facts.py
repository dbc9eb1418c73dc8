"""An order's rule tags stored without the values their reasons took, where the order's own
facts give them again (``shared.stored_tags.derived_args``, ``WRITE_ARGS_FROM_FACTS``): every
tag reads back with the reason it was given, the values the facts would not give are kept, and
a document without its facts still reads."""

from decimal import Decimal
from typing import Any

import bson
import pytest

from bench.orders import order_payloads
from services.tagger.order_record import OrderRecord, update_of
from services.tagger.rules.engine import decide, merge_tags
from services.tagger.rules.facts import (
    QUOTED_AS_STORED,
    FiguresSnapshot,
    facts_of_stored,
    order_facts,
)
from services.tagger.rules.reasons import ReasonTemplates
from services.tagger.rules.schema import load_rules, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared import stored_tags
from shared.models import Order, OrderStatus
from shared.stored_order import currency_of
from shared.stored_tags import order_tags
from tests.factories import make_order
from tests.unit.test_stored_tags import AT

RULES = load_rules(DEFAULT_RULES_FILE)
TEMPLATES = ReasonTemplates(RULES)
FIGURES = [
    FiguresSnapshot(),
    FiguresSnapshot(
        prior_order_count=4,
        prior_lifetime_spend=Decimal("1234.5"),
        spend_365d=Decimal("99999.99"),
        recent_order_times=(1.5, 2.0, 3.0, 4.0, 5.0),
        first_order_at=1.0,
    ),
    FiguresSnapshot(
        prior_order_count=1, prior_lifetime_spend=Decimal("10"), spend_365d=Decimal(10)
    ),
]


def _record(order: Order, figures: FiguresSnapshot, status: OrderStatus) -> OrderRecord:
    facts = order_facts(order, figures, status)
    change = merge_tags(
        [], decide(RULES, facts), exclusive_families=RULES.exclusive_families, max_tags=20, at=AT
    )
    return OrderRecord(order, status, change.tags, figures, applied_events=["e1"], facts=facts)


def _through_mongodb(document: dict[str, Any]) -> dict[str, Any]:
    return bson.decode(bson.encode(document), bson.CodecOptions(tz_aware=True))


def test_every_tag_reads_back_with_the_reason_it_was_given() -> None:
    orders = [Order.model_validate(p) for p in order_payloads(300, "GEN", customers=40, seed=3)]
    left_out = kept = 0
    for index, order in enumerate(orders):
        figures = FIGURES[index % len(FIGURES)]
        status = list(OrderStatus)[index % len(OrderStatus)]
        record = _record(order, figures, status)
        document = _through_mongodb(record.to_document(TEMPLATES))

        assert OrderRecord.from_document(document, TEMPLATES).tags == record.tags, order.order_no
        for name, tag in zip(document["tag_names"], document["tags"], strict=True):
            given = next(t for t in record.tags if t.name == name)
            if TEMPLATES.placeholders(given.rule_id or "", given.rule_version or 0):
                left_out += "args" not in tag
                kept += "args" in tag
    assert left_out > 10 * max(kept, 1)  # most values are the order's own facts


def test_values_the_facts_no_longer_give_are_kept() -> None:
    """A tag kept from before an update: its reason quotes what the order said then."""
    order = Order.model_validate(order_payloads(1, "OLD", seed=1)[0])
    record = _record(order, FIGURES[0], order.status)
    [region] = [t for t in record.tags if t.name.startswith("region:")]
    moved = order.model_copy(
        update={"shipping": order.shipping.model_copy(update={"province": "北京市"})}
    )
    updated = OrderRecord(moved, order.status, record.tags, FIGURES[0], applied_events=["e1"])
    document = _through_mongodb(updated.to_document(TEMPLATES))

    by_name = dict(zip(document["tag_names"], document["tags"], strict=True))
    assert "args" in by_name[region.name]
    assert OrderRecord.from_document(document, TEMPLATES).tags == record.tags


def test_the_facts_a_reader_works_out_are_those_the_rules_were_decided_on() -> None:
    orders = [Order.model_validate(p) for p in order_payloads(100, "F", customers=10, seed=5)]
    for index, order in enumerate(orders):
        figures = FIGURES[index % len(FIGURES)]
        record = _record(order, figures, order.status)
        decided = record.facts
        read = facts_of_stored(_through_mongodb(record.to_document(TEMPLATES)))
        for rule in RULES.rules:
            assert TEMPLATES.args_from_facts(
                rule.id, rule.version, lambda facts=read: facts
            ) == TEMPLATES.args_from_facts(rule.id, rule.version, lambda facts=decided: facts)


def test_a_document_read_without_its_figures_names_the_rule_and_does_not_fail() -> None:
    order = Order.model_validate(order_payloads(1, "NF", seed=2)[0])
    record = _record(order, FIGURES[0], order.status)
    document = _through_mongodb(record.to_document(TEMPLATES))
    del document["figures"]  # a reader's projection left them out

    tags = {tag.name: tag for tag in order_tags(document, TEMPLATES)}
    region = next(name for name in tags if name.startswith("region:"))
    assert tags[region].reason.startswith("rule region version 1")
    assert tags["status:" + order.status.value].reason == f"order status is {order.status.value}"


def test_the_release_befores_form_stores_the_values_and_reads_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stored_tags, "WRITE_ARGS_FROM_FACTS", False)
    order = Order.model_validate(order_payloads(1, "NS", seed=4)[0])
    record = _record(order, FIGURES[1], order.status)
    document = _through_mongodb(record.to_document(TEMPLATES))
    region = next(i for i, name in enumerate(document["tag_names"]) if name.startswith("region:"))
    assert "args" in document["tags"][region]
    assert OrderRecord.from_document(document, TEMPLATES).tags == record.tags
    # the values stored, a reader needs none of the order's facts (its figures left out)
    without_figures = {k: v for k, v in document.items() if k != "figures"}
    assert [t.reason for t in order_tags(without_figures, TEMPLATES)] == [
        t.reason for t in record.tags
    ]


def test_values_worked_out_by_code_are_stored_and_a_tags_own_value_comes_from_its_name() -> None:
    """Only values that are the order's own data are read again from it; a ratio is stored.
    A region tag's region is the one its name holds, whatever the code maps provinces to."""
    figures = FiguresSnapshot(prior_order_count=4, prior_lifetime_spend=Decimal("400"))
    order = make_order("SO-BIG", pricing={"total": "9000.00"})
    record = _record(order, figures, order.status)
    document = _through_mongodb(record.to_document(TEMPLATES))
    by_name = dict(zip(document["tag_names"], document["tags"], strict=True))
    assert "args" in by_name["risk:amount-anomaly"]  # {amount_to_average}: worked out
    [region] = [name for name in by_name if name.startswith("region:")]
    assert "args" not in by_name[region]

    def no_facts() -> None:
        raise AssertionError("the facts were worked out for a tag whose name holds its values")

    status = f"status:{order.status.value}"
    assert stored_tags.derived_args(status, "status", {"rule_id": "status", "rule_version": 1},
                                    TEMPLATES, no_facts) == [order.status.value]  # fmt: skip


def test_a_tag_read_where_its_rule_version_is_not_held_is_written_back_without_values() -> None:
    """A rule set that no longer parses is left out of the templates: its tags read as the rule
    and its version; writing the order again must not turn that stand-in into its reason."""
    order = make_order("SO-LOST", shipping={"province": "上海"})
    record = _record(order, FIGURES[0], order.status)
    document = _through_mongodb(record.to_document(TEMPLATES))
    bumped = DEFAULT_RULES_FILE.read_text(encoding="utf-8").replace(
        "  - id: region\n    version: 1", "  - id: region\n    version: 2"
    )
    without = ReasonTemplates(parse_rules(bumped, "bumped"))  # region version 1 not held
    read = OrderRecord.from_document(document, without)
    [region] = [t for t in read.tags if t.name.startswith("region:")]
    assert region.reason == "rule region version 1"

    again = _through_mongodb(read.to_document(without))
    by_name = dict(zip(again["tag_names"], again["tags"], strict=True))
    assert "reason" not in by_name[region.name]
    assert OrderRecord.from_document(again, TEMPLATES).tags == record.tags


def test_an_order_updated_into_the_default_currency_drops_the_one_it_stored() -> None:
    order = make_order("SO-USD", pricing={"total": "10.00", "currency": "USD"})
    stored = _through_mongodb(_record(order, FIGURES[0], order.status).to_document(TEMPLATES))
    assert stored["currency"] == "USD"
    cny = order.model_copy(update={"pricing": order.pricing.model_copy(update={"currency": "CNY"})})
    document = _record(cny, FIGURES[0], cny.status).to_document(TEMPLATES)
    assert update_of(document, stored)["$unset"]["currency"] == ""
    assert currency_of(document) == "CNY"


@pytest.mark.parametrize("written", [False, True])
def test_a_tag_with_values_read_where_its_version_is_not_held_keeps_them_when_written(
    written: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its reason reads as the stand-in "rule X version N: values"; written back, the tag keeps
    the values, not the stand-in as its reason, whichever form stored them."""
    monkeypatch.setattr(stored_tags, "WRITE_ARGS_FROM_FACTS", written)
    order = make_order("SO-KEPT", shipping={"method": "express", "province": "上海"})
    record = _record(order, FIGURES[0], order.status)
    document = _through_mongodb(record.to_document(TEMPLATES))
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    for rule in ("priority.fast-shipping", "region"):
        text = text.replace(f"  - id: {rule}\n    version: 1", f"  - id: {rule}\n    version: 2")
    without = ReasonTemplates(parse_rules(text, "bumped"))
    read = {t.name: t for t in OrderRecord.from_document(document, without).tags}
    # stored with its value, the stand-in shows it; read again from the order, it cannot
    stand_in = "rule priority.fast-shipping version 1" + ("" if written else ": express")
    assert read["urgent"].reason == stand_in

    again = _through_mongodb(OrderRecord.from_document(document, without).to_document(without))
    by_name = dict(zip(again["tag_names"], again["tags"], strict=True))
    assert all("reason" not in tag for tag in by_name.values())
    assert OrderRecord.from_document(again, TEMPLATES).tags == record.tags


def test_the_facts_read_again_are_the_ones_the_release_before_reads_again() -> None:
    """What a reader works out of the stored order must stay what the writer of the release
    after it leaves out: widen it in one release, write with it in the next."""
    assert frozenset({
        "order_no", "status", "channel", "notes", "sales_rep", "amount", "currency",
        "payment.method", "shipping.method", "shipping.province", "customer.id",
        "customer.vip", "customer.company", "customer.order_count",
        "customer.prior_order_count", "customer.lifetime_spend", "customer.spend_365d",
    }) == QUOTED_AS_STORED  # fmt: skip

"""Comparing a candidate rule set with the active one (pure: no servers), and rule versions."""

import os
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.orders import order_payloads
from services.tagger.order_record import OrderRecord
from services.tagger.rule_changes import ReplayDecoder, UnreadableOrder
from services.tagger.rules.book import RuleBook, version_of
from services.tagger.rules.diff import (
    Change,
    ReplayOrder,
    RuleDiff,
    changed_conditions,
    compare_order,
    tags_after,
)
from services.tagger.rules.facts import (
    STORED_ORDER_FIELDS,
    FiguresSnapshot,
    order_facts,
    stored_order_facts,
)
from services.tagger.rules.schema import RuleSet, parse_rules
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.events import AppliedTag, TagSource
from shared.models import Order, OrderStatus
from shared.stored_order import order_as_ingested
from tests.factories import BASE_TIME, make_order

ACTIVE_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
ACTIVE = parse_rules(ACTIVE_TEXT)
# the shop lowers "high value" from 100,000 to 80,000
LOWERED_TEXT = ACTIVE_TEXT.replace(
    "when: {fact: customer.spend_365d, gt: 100000}", "when: {fact: customer.spend_365d, gt: 80000}"
).replace("id: customer.high-value\n    version: 1", "id: customer.high-value\n    version: 2")
LOWERED = parse_rules(LOWERED_TEXT)
MAX_TAGS = 20


def stored(
    order_no: str, spend_365d: str, rules: RuleSet = ACTIVE, **overrides: object
) -> ReplayOrder:
    """An order as the tagger stored it: tagged by ``rules`` with these figures."""
    untagged = ReplayOrder.of(
        make_order(order_no, **overrides),
        OrderStatus.PENDING,
        [],
        FiguresSnapshot(prior_order_count=3, spend_365d=Decimal(spend_365d)),
    )
    return replace(untagged, tags=tags_after(rules, untagged, MAX_TAGS))


def test_the_lowered_threshold_is_a_new_version() -> None:
    assert version_of(LOWERED_TEXT) != version_of(ACTIVE_TEXT)
    assert version_of(ACTIVE_TEXT) == version_of(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))


def test_an_order_between_the_thresholds_gains_high_value() -> None:
    diff = compare_order(ACTIVE, LOWERED, stored("SO-1", "90000"), MAX_TAGS)

    assert diff is not None
    assert diff.gained == ("high-value",)
    assert diff.lost == ()
    assert diff.rule_of == {"high-value": "customer.high-value"}


def test_orders_either_side_of_both_thresholds_do_not_change() -> None:
    assert compare_order(ACTIVE, LOWERED, stored("SO-1", "70000"), MAX_TAGS) is None
    assert compare_order(ACTIVE, LOWERED, stored("SO-2", "120000"), MAX_TAGS) is None


def test_raising_the_threshold_back_loses_the_tag() -> None:
    order = stored("SO-1", "90000", rules=LOWERED)

    diff = compare_order(LOWERED, ACTIVE, order, MAX_TAGS)

    assert diff is not None
    assert (diff.gained, diff.lost) == ((), ("high-value",))


def test_a_manual_tag_in_an_exclusive_family_is_kept_by_both() -> None:
    """A rule change cannot take away what a person set: the diff shows no change for it."""
    lower_urgent = ACTIVE_TEXT.replace(
        "in: [express, same_day]", "in: [express, same_day, standard]"
    )
    candidate = parse_rules(lower_urgent)
    order = stored("SO-1", "0")
    manual = AppliedTag(
        name="regular",
        family="priority",
        source=TagSource.MANUAL,
        by="li",
        reason="customer asked",
        at=BASE_TIME,
    )
    with_manual = replace(order, tags=[manual])

    assert compare_order(ACTIVE, candidate, with_manual, MAX_TAGS) is None
    assert compare_order(ACTIVE, candidate, order, MAX_TAGS) is not None


def test_the_tally_counts_per_tag_and_rule_with_examples() -> None:
    orders = [
        stored(f"SO-{i}", spend) for i, spend in enumerate(["90000", "85000", "70000", "120000"])
    ]
    tally = RuleDiff()

    changed = tally.compare(ACTIVE, LOWERED, orders, MAX_TAGS)

    assert [d.order_no for d in changed] == ["SO-0", "SO-1"]
    assert (tally.orders_compared, tally.orders_changed) == (4, 2)
    assert tally.by_tag["high-value"].gained == 2
    assert tally.by_tag["high-value"].gained_examples == ["SO-0", "SO-1"]
    assert tally.by_rule == {("customer.high-value", "high-value", Change.GAINED): 2}
    report = tally.report()
    assert report["tags"] == [
        {
            "tag": "high-value",
            "gained": 2,
            "lost": 0,
            "gained_examples": ["SO-0", "SO-1"],
            "lost_examples": [],
        }
    ]


def test_a_tally_resumed_from_its_report_goes_on_as_if_never_stopped() -> None:
    """A diff job checkpoints ``report()`` and resumes from it (rule_diff_job.py)."""
    spends = ["90000", "85000", "70000", "120000", "95000", "60000", "99000"]
    orders = [stored(f"SO-{i}", spend) for i, spend in enumerate(spends)]
    whole = RuleDiff()
    whole.compare(ACTIVE, LOWERED, orders, MAX_TAGS)
    first = RuleDiff()
    first.compare(ACTIVE, LOWERED, orders[:3], MAX_TAGS)

    resumed = RuleDiff.from_report(first.report())
    resumed.compare(ACTIVE, LOWERED, orders[3:], MAX_TAGS)

    assert resumed.report() == whole.report()
    assert resumed.by_rule == whole.by_rule
    assert RuleDiff.from_report(None).report() == RuleDiff().report()


def test_the_tally_can_be_restricted_to_some_tags() -> None:
    orders = [stored("SO-1", "90000")]

    only_vip = RuleDiff(only_tags=frozenset({"vip"}))

    assert only_vip.compare(ACTIVE, LOWERED, orders, MAX_TAGS) == []
    assert (only_vip.orders_compared, only_vip.orders_changed) == (1, 0)


def test_the_book_knows_the_version_it_loaded_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(ACTIVE_TEXT, encoding="utf-8")
    book = RuleBook(path)
    loaded = path.stat().st_mtime_ns  # a later write must look newer even on coarse clocks
    assert book.version == version_of(ACTIVE_TEXT)

    path.write_text(LOWERED_TEXT, encoding="utf-8")

    os.utime(path, ns=(loaded + 1_000_000, loaded + 1_000_000))
    assert book.reload_if_changed() is True
    assert (book.version, book.text) == (version_of(LOWERED_TEXT), LOWERED_TEXT)

    path.write_text("rules: [{id: broken}]", encoding="utf-8")
    os.utime(path, ns=(loaded + 2_000_000, loaded + 2_000_000))
    assert book.reload_if_changed() is False
    assert book.version == version_of(LOWERED_TEXT)  # the last good version stays


def _varied_orders(count: int) -> list[ReplayOrder]:
    """Orders of many amounts, methods and figures, tagged by the active rules."""
    replayed = []
    for index, payload in enumerate(order_payloads(count, "FP", customers=40, seed=3)):
        order = Order.model_validate(payload)
        figures = FiguresSnapshot(
            prior_order_count=index % 5, spend_365d=Decimal(index * 997 % 150_000)
        )
        untagged = ReplayOrder.of(order, order.status, [], figures)
        replayed.append(replace(untagged, tags=tags_after(ACTIVE, untagged, MAX_TAGS)))
    return replayed


def _reference(active: RuleSet, candidate: RuleSet, orders: list[ReplayOrder]) -> list[object]:
    """Every order compared in full, one by one (no shortcut)."""
    return [d for o in orders if (d := compare_order(active, candidate, o, MAX_TAGS)) is not None]


def test_the_shortcut_for_changed_conditions_finds_exactly_the_full_comparisons_changes() -> None:
    orders = _varied_orders(600)
    candidates = {
        "thresholds": LOWERED_TEXT.replace(
            "{fact: amount, gte: 50000}", "{fact: amount, gte: 5000}"
        ),
        # a rule added: no shortcut, every rule compared
        "added": ACTIVE_TEXT.replace(
            "  - id: customer.big\n",
            "  - id: customer.nearly-big\n    version: 1\n    tag: big-customer\n"
            "    when: {fact: amount, gte: 10000}\n    reason: big\n  - id: customer.big\n",
        ),
    }
    for name, text in candidates.items():
        candidate = parse_rules(text)
        expected = _reference(ACTIVE, candidate, orders)
        assert expected, name  # the candidate changes some orders
        assert RuleDiff().compare(ACTIVE, candidate, orders, MAX_TAGS) == expected, name
    assert changed_conditions(ACTIVE, parse_rules(candidates["added"])) is None
    pairs = changed_conditions(ACTIVE, parse_rules(candidates["thresholds"]))
    assert pairs is not None
    assert [before.id for before, _ in pairs] == ["customer.big", "customer.high-value"]


STORED_VARIANTS: list[dict[str, object]] = [
    {},  # every default left out of the stored form
    {
        "customer": {"id": "C-2", "name": "王芳", "company": " 杭州贸易 ", "vip": True},
        "payment": {"method": "alipay", "paid_at": "2026-11-24T08:05:00+08:00"},
        "order_type": "repeat",
        "sales_rep": " 刘 ",
        "shipping": {"method": "same_day", "province": "广东省"},
        "requested_delivery_at": "2026-11-25T10:30:00.250000+08:00",
        "channel": " wechat ",
        "notes": "急！请尽快发货",
        "pricing": {"currency": "USD", "total": "1E+3", "discount": "5"},
        "created_at": "2026-11-24T09:15:30.123456+08:00",
    },
    {
        "lines": [
            {"sku": "A/1", "name": "a", "category": " Toys ", "quantity": 2, "unit_price": "1"},
            {"sku": "B-2", "name": "b", "category": "toys", "quantity": 1, "unit_price": "0.5"},
        ],
        "pricing": {"total": "2.50"},
        "shipping": {"method": "pickup"},
    },
    {"shipping": {"province": "Atlantis"}, "order_type": "return", "status": "returned"},
]


def test_facts_read_from_a_stored_order_are_those_of_the_validated_order() -> None:
    """The replay builds facts straight from the stored document, of the fields it reads (no
    ``Order`` validation): they must be exactly what the tagger's rules saw for the order."""
    orders = [make_order(f"SO-{i}", **variant) for i, variant in enumerate(STORED_VARIANTS)]
    orders += [Order.model_validate(p) for p in order_payloads(200, "GEN", customers=30, seed=7)]
    figures = [
        FiguresSnapshot(),
        FiguresSnapshot(
            prior_order_count=4,
            prior_lifetime_spend=Decimal("1234.5"),
            spend_365d=Decimal("99.99"),
            recent_order_times=(1.5, 2.0),
            first_order_at=1.0,
        ),
    ]
    for order in orders:
        for snapshot in figures:
            for status in OrderStatus:
                document = OrderRecord(order, status, [], snapshot).to_document()
                stored = order_as_ingested(document)
                expected = order_facts(Order.model_validate(stored), snapshot, status)
                read = stored_order_facts(_projected(stored), snapshot, status)
                assert _exactly(read) == _exactly(expected), order.order_no
                assert expected == order_facts(order, snapshot, status)


def _projected(document: dict[str, Any]) -> dict[str, Any]:
    """What MongoDB answers for the projection of ``STORED_ORDER_FIELDS`` (into arrays too)."""

    def pick(value: Any, path: list[str]) -> Any:
        if isinstance(value, list):
            return [picked for item in value if (picked := pick(item, path)) is not None]
        if not isinstance(value, dict) or path[0] not in value:
            return None
        return value[path[0]] if len(path) == 1 else {path[1]: pick(value[path[0]], path[1:])}

    projected: dict[str, Any] = {}
    for name in STORED_ORDER_FIELDS:
        path = name.split(".")
        value = document.get(path[0])
        if value is None:
            continue
        if len(path) == 1:
            projected[name] = value
            continue
        inner = pick(value, path[1:])
        if isinstance(value, list):
            into = projected.setdefault(path[0], [{} for _ in value])
            for item, part in zip(into, inner, strict=True):
                item.update(part if isinstance(part, dict) else {path[1]: part})
        elif inner is not None:
            projected.setdefault(path[0], {})[path[1]] = inner
    return projected


def _exactly(facts: dict[str, object]) -> dict[str, str]:
    """Each fact's type and spelling (``Decimal("1E+3")`` is not ``Decimal("1000")`` here)."""
    return {name: f"{type(value).__name__}:{value!r}" for name, value in facts.items()}


def test_a_stored_document_that_is_no_order_is_refused_naming_it() -> None:
    record = OrderRecord(make_order("SO-7"), OrderStatus.PENDING, [], FiguresSnapshot())
    document = record.to_document()
    del document["order"]["pricing"]

    with pytest.raises(UnreadableOrder, match=r"'SO-7'.*pricing"):
        ReplayDecoder()(document)

"""``ordertag ruleset``'s arguments, and the rule-file problems the API reports one by one."""

from datetime import UTC, datetime, timedelta

import pytest
import typer

from services.tagger.rules.schema import RuleFileError, parse_rules
from services.tagger.rules_cli import parse_filters, parse_since
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.models import OrderStatus

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("4w", timedelta(weeks=4))],
)
def test_since_counts_back_from_now(text: str, back: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - back


@pytest.mark.parametrize("text", ["90", "d", "-1d", "3m", "90 days"])
def test_a_since_without_number_and_unit_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter, match=r"e\.g\. 90d"):
        parse_since(text, NOW)


def test_tag_filters_narrow_the_report_and_the_others_the_orders() -> None:
    window, tags = parse_filters(
        ["tag=vip", "tag=high-value", "status=shipped", "region=east-china"], NOW
    )

    assert tags == frozenset({"vip", "high-value"})
    assert window.query() == {
        "created_at": {"$gte": NOW},
        "status": "shipped",
        "region": "east-china",
    }
    assert window.status is OrderStatus.SHIPPED


def test_without_filters_every_order_and_tag_counts() -> None:
    window, tags = parse_filters([], None)

    assert (window.query(), tags) == ({}, None)


@pytest.mark.parametrize("item", ["colour=red", "tag", "tag=", "status=lost"])
def test_a_bad_filter_is_refused_naming_it(item: str) -> None:
    with pytest.raises(typer.BadParameter, match=item.split("=")[0]):
        parse_filters([item], None)


def test_each_problem_of_a_rule_file_names_the_rule_and_field() -> None:
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    broken = text.replace("fact: shipping.method", "fact: shipping.methd", 1).replace(
        'reason: "order type return → return order"', 'reason: ""', 1
    )

    with pytest.raises(RuleFileError) as caught:
        parse_rules(broken, "candidate")

    wheres = [where for where, _ in caught.value.problems]
    assert len(wheres) == 2
    assert wheres[0].startswith("rule priority.")
    assert wheres[0].endswith("field when.fact")
    assert wheres[1] == "rule order-type.return, field reason"


def test_a_file_that_is_not_a_mapping_is_one_problem_of_the_file() -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rules("- just a list", "candidate")

    assert caught.value.problems == [("file", "expected a mapping with families, tags and rules")]

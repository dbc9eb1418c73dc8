"""The rule file's tools: reloading keeps the last good rules; `ordertag rules check/explain`."""

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from services.tagger.order_record import OrderRecord
from services.tagger.rules.book import RuleBook
from services.tagger.rules.facts import FiguresSnapshot
from services.tagger.settings import DEFAULT_RULES_FILE
from shared.models import OrderStatus
from tests.factories import make_order, order_payload


def test_a_bad_edit_is_refused_and_the_last_good_rules_stay(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DEFAULT_RULES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    book = RuleBook(path)
    good = book.current

    path.write_text(path.read_text().replace("fact: shipping.method", "fact: shiping.method"))
    os.utime(path, ns=(1, 1))  # a distinct modification time, whatever the clock's resolution

    assert book.reload_if_changed() is False
    assert book.current is good
    assert book.reload_if_changed() is None  # the same bad file is not re-read


def test_a_good_edit_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DEFAULT_RULES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    book = RuleBook(path)

    path.write_text(path.read_text().replace("gte: 50000", "gte: 40000"))
    os.utime(path, ns=(2, 2))

    assert book.reload_if_changed() is True
    big = next(rule for rule in book.current.rules if rule.id == "customer.big")
    assert "40000" in str(big.when)


def test_rules_check_names_the_rule_field_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        DEFAULT_RULES_FILE.read_text().replace(
            "version: 2\n    tag: vip", "version: 0\n    tag: vip"
        )
    )

    good = CliRunner().invoke(app, ["rules", "check", str(DEFAULT_RULES_FILE)])
    bad = CliRunner().invoke(app, ["rules", "check", str(path)])

    assert good.exit_code == 0
    assert "19 rules" in good.output
    assert bad.exit_code == 1
    assert "rule customer.vip, field version" in " ".join(bad.output.split())


def test_rules_explain_shows_which_rules_fire_and_why(tmp_path: Path) -> None:
    order = tmp_path / "order.json"
    order.write_text(
        json.dumps(order_payload(shipping={"method": "same_day", "province": "上海"}, notes="加急"))
    )

    result = CliRunner().invoke(
        app, ["rules", "explain", str(DEFAULT_RULES_FILE), str(order)], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    assert "same_day shipping → urgent" in result.output
    assert "matches" in result.output  # urgent-notes fires too, but the family is taken
    assert "region:east-china" in result.output


def test_rules_explain_takes_the_figures_a_stored_order_holds(tmp_path: Path) -> None:
    """Copied from a stored order (its figures under ``FIGURE_NAMES``) or a Redis snapshot
    (the long names): either reads, and a returning customer's rule fires."""
    order = tmp_path / "order.json"
    order.write_text(json.dumps(order_payload()))
    returning = FiguresSnapshot(prior_order_count=4, first_order_at=1_700_000_000.0)
    stored = OrderRecord(make_order(), OrderStatus.PENDING, [], returning).to_document()
    assert "prior_orders" in stored["figures"]  # the short names (``FIGURE_NAMES``)
    for figures in (stored["figures"], returning.to_record()):
        path = tmp_path / "figures.json"
        path.write_text(json.dumps(figures))
        result = CliRunner().invoke(
            app,
            ["rules", "explain", str(DEFAULT_RULES_FILE), str(order), "--figures", str(path)],
            env={"COLUMNS": "200"},
        )
        assert result.exit_code == 0, result.output
        assert "returning-customer" in result.output

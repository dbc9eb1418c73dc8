"""``ordertag import``: files streamed through ingest's validation into Kafka."""

import asyncio
import json
import re
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.ingest.settings import IngestSettings
from shared.events import order_event_adapter
from tests.factories import order_payload
from tests.integration.conftest import read_topic
from tests.integration.servers import RedisServer

pytestmark = pytest.mark.integration


def env_of(settings: IngestSettings) -> dict[str, str]:
    return {
        "ORDERTAG_TOPICS__ORDERS": settings.topics.orders,
        "ORDERTAG_TOPICS__TAGGED": settings.topics.tagged,
        "ORDERTAG_TOPICS__DEAD_LETTER": settings.topics.dead_letter,
        "ORDERTAG_TOPICS__ALERTS": settings.topics.alerts,
    }


def test_jsonl_import_publishes_valid_lines_and_reports_the_rest(
    tmp_path: Path, ingest_settings: IngestSettings, run_id: str
) -> None:
    bad = order_payload(f"{run_id}-bad", pricing={"total": "-5"})
    lines = [json.dumps(order_payload(f"{run_id}-{i}")) for i in range(50)]
    lines[10] = json.dumps(bad)
    lines[20] = "{broken json"
    source = tmp_path / "orders.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["import", str(source)], env=env_of(ingest_settings))
    again = CliRunner().invoke(app, ["import", str(source)], env=env_of(ingest_settings))

    assert result.exit_code == 2, result.output
    report_text = (tmp_path / "orders.jsonl.rejected.jsonl").read_text(encoding="utf-8")
    report = [json.loads(line) for line in report_text.splitlines()]
    assert [(r["line"], r["outcome"]) for r in report] == [(11, "invalid"), (21, "invalid")]
    assert report[0]["errors"][0]["field"] == "pricing.total"
    assert "not valid JSON" in report[1]["errors"][0]["problem"]
    assert again.exit_code == 2  # a rerun skips what was accepted
    records = asyncio.run(
        read_topic(ingest_settings, ingest_settings.topics.orders, 48, extra_wait=1.5)
    )
    assert len({order_event_adapter.validate_json(r.value).order_no for r in records}) == 48
    assert len(records) == 48


def test_csv_rows_with_the_same_order_number_form_one_order(
    tmp_path: Path, ingest_settings: IngestSettings, run_id: str
) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(
        "order_no,created_at,customer_id,customer_name,customer_vip,sku,product_name,category,"
        "quantity,unit_price,total,shipping_method,province\n"
        f"{run_id}-1,2026-11-24T08:00:00+08:00,C9,王五,yes,A,Apple,fruit,2,5.00,13.00,express,上海\n"
        f"{run_id}-1,2026-11-24T08:00:00+08:00,C9,王五,yes,B,Pear,fruit,1,3.00,13.00,express,上海\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(app, ["import", str(source)], env=env_of(ingest_settings))

    assert result.exit_code == 0, result.output
    [record] = asyncio.run(read_topic(ingest_settings, ingest_settings.topics.orders, 1))
    event = order_event_adapter.validate_json(record.value)
    order = event.order  # type: ignore[union-attr]
    assert [line.sku for line in order.lines] == ["A", "B"]
    assert order.customer.vip is True
    assert order.shipping.province == "上海"


def test_an_import_waits_out_a_redis_outage_and_reports_what_it_retried(
    tmp_path: Path, ingest_settings: IngestSettings, run_id: str
) -> None:
    redis = RedisServer(tmp_path)  # killed before the import starts, back two seconds later
    source = tmp_path / "orders.jsonl"
    source.write_text(
        "".join(json.dumps(order_payload(f"{run_id}-{i}")) + "\n" for i in range(30)),
        encoding="utf-8",
    )
    comeback = threading.Timer(2.0, redis.start_sync)
    comeback.start()
    try:
        result = CliRunner().invoke(
            app,
            ["import", str(source), "--chunk-size", "10", "--retry-for", "60"],
            env={**env_of(ingest_settings), "ORDERTAG_REDIS_URL": redis.url},
        )
    finally:
        comeback.join()
        redis.kill_sync()

    assert result.exit_code == 0, result.output
    assert re.search(r"retried\s+│\s+[1-9]", result.output), result.output
    assert re.search(r"failed after retries\s+│\s+0\b", result.output), result.output
    assert re.search(r"accepted\s+│\s+30\b", result.output), result.output
    records = asyncio.run(
        read_topic(ingest_settings, ingest_settings.topics.orders, 30, extra_wait=1)
    )
    assert sorted(order_event_adapter.validate_json(r.value).order_no for r in records) == sorted(
        f"{run_id}-{i}" for i in range(30)
    )

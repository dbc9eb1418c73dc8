"""``ordertag import FILE``: stream a file of orders into Kafka through ingest's validation."""

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from services.ingest.idempotency import OrderIdempotency
from services.ingest.importer import FileFormatError, chunks, read_orders
from services.ingest.intake import Intake, ItemResult, Outcome, parse_orders
from services.ingest.publishing import OrderEventPublisher
from services.ingest.settings import IngestSettings
from shared.kafka import ensure_topics, make_producer
from shared.redis import make_redis

console = Console(stderr=True)
KEPT = {Outcome.ACCEPTED, Outcome.DUPLICATE}


class ImportStopped(Exception):
    """Kafka stayed unavailable; rerunning the import is safe (accepted orders are skipped)."""


def import_orders(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    chunk_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
) -> None:
    """Import a .jsonl or .csv file of orders; rejected lines go to FILE.rejected.jsonl."""
    settings = IngestSettings()
    report_path = file.with_name(file.name + ".rejected.jsonl")
    columns = [TextColumn("{task.description}"), BarColumn(), TransferSpeedColumn()]
    with (
        Progress(*columns, console=console) as progress,
        progress.open(file, "r", encoding="utf-8", description="importing") as source,
        report_path.open("w", encoding="utf-8") as report,
    ):
        try:
            totals = asyncio.run(_import(settings, read_orders(file, source), report, chunk_size))
        except (FileFormatError, ImportStopped) as error:
            console.print(f"[red]stopped:[/red] {error}")
            raise typer.Exit(1) from None
    _summary(totals, report_path)
    if totals[Outcome.INVALID] or totals[Outcome.CONFLICT]:
        raise typer.Exit(2)


async def _import(
    settings: IngestSettings, items: Iterator[tuple[int, Any]], report: TextIO, chunk_size: int
) -> Counter[Outcome]:
    redis = make_redis(settings)
    producer = make_producer(settings)
    publisher = OrderEventPublisher(
        producer, settings.topics.orders, settings.ingest_publish_timeout_s
    )
    intake = Intake(publisher, OrderIdempotency(redis, settings.ingest_idempotency_retention_s))
    totals: Counter[Outcome] = Counter()
    await ensure_topics(settings)
    await producer.start()
    try:
        for chunk in chunks(items, chunk_size):
            results = await _submit_chunk(intake, [raw for _, raw in chunk])
            for result in results:
                totals[result.outcome] += 1
                if result.outcome not in KEPT:
                    line = chunk[result.index][0]
                    report.write(
                        json.dumps({"line": line, **result.as_json()}, ensure_ascii=False) + "\n"
                    )
            if any(r.outcome is Outcome.UNAVAILABLE for r in results):
                first_line = chunk[0][0]
                raise ImportStopped(
                    f"Kafka unavailable at line {first_line}; rerun the import "
                    "(orders already accepted are skipped as duplicates)"
                )
    finally:
        await producer.stop()
        await redis.aclose()
    return totals


async def _submit_chunk(intake: Intake, raw: list[Any]) -> list[ItemResult]:
    unreadable = [
        ItemResult(i, None, Outcome.INVALID, errors=[{"field": "line", "problem": item["_error"]}])
        for i, item in enumerate(raw)
        if isinstance(item, dict) and "_error" in item
    ]
    skip = {result.index for result in unreadable}
    valid, invalid = parse_orders([item if i not in skip else {} for i, item in enumerate(raw)])
    invalid = [r for r in invalid if r.index not in skip]
    return sorted(unreadable + invalid + await intake.submit(valid), key=lambda r: r.index)


def _summary(totals: Counter[Outcome], report_path: Path) -> None:
    table = Table(title="import summary")
    table.add_column("outcome")
    table.add_column("orders", justify="right")
    for outcome in Outcome:
        table.add_row(outcome.value, str(totals[outcome]))
    console.print(table)
    rejected = sum(totals.values()) - totals[Outcome.ACCEPTED] - totals[Outcome.DUPLICATE]
    if rejected:
        console.print(f"rejected lines with field and problem: {report_path}")

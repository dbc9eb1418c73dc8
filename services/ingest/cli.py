"""``ordertag import FILE``: stream a file of orders into Kafka through ingest's validation.

An outage of Kafka or Redis does not stop the import: the orders not taken are sent again with
backoff (safe, ingest deduplicates by order number) until ``--retry-for`` seconds pass; only then
are they reported as failed. The summary says how many were retried and how many failed.
"""

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, TextIO

import stamina
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from services.ingest.bootstrap import bootstrap
from services.ingest.importer import FileFormatError, chunks, read_orders
from services.ingest.intake import Intake, ItemResult, Outcome, parse_orders
from services.ingest.settings import IngestSettings

console = Console(stderr=True)
KEPT = {Outcome.ACCEPTED, Outcome.DUPLICATE}


class NotTaken(Exception):
    """Some orders of a chunk were not taken (Kafka or Redis unavailable): send them again."""


@dataclass
class Totals:
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    retried: int = 0  # orders sent again after an outage


def import_orders(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    chunk_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
    retry_for: Annotated[
        float, typer.Option(min=0, help="seconds to keep retrying an outage before giving up")
    ] = 300.0,
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
            totals = asyncio.run(
                _import(settings, read_orders(file, source), report, chunk_size, retry_for)
            )
        except FileFormatError as error:
            console.print(f"[red]stopped:[/red] {error}")
            raise typer.Exit(1) from None
    _summary(totals, report_path)
    if totals.outcomes[Outcome.UNAVAILABLE]:
        raise typer.Exit(3)  # rerunning the import is safe: accepted orders are skipped
    if totals.outcomes[Outcome.INVALID] or totals.outcomes[Outcome.CONFLICT]:
        raise typer.Exit(2)


async def _import(
    settings: IngestSettings,
    items: Iterator[tuple[int, Any]],
    report: TextIO,
    chunk_size: int,
    retry_for_s: float,
) -> Totals:
    totals = Totals()
    async with bootstrap(settings) as ingest:
        for chunk in chunks(items, chunk_size):
            results = await _submit_until_taken(
                ingest.intake, [raw for _, raw in chunk], totals, retry_for_s
            )
            for result in results:
                totals.outcomes[result.outcome] += 1
                if result.outcome not in KEPT:
                    line = chunk[result.index][0]
                    report.write(
                        json.dumps({"line": line, **result.as_json()}, ensure_ascii=False) + "\n"
                    )
    return totals


async def _submit_until_taken(
    intake: Intake, raw: list[Any], totals: Totals, retry_for_s: float
) -> list[ItemResult]:
    """Submit a chunk; send what an outage kept out again, with backoff, within the budget."""
    results = await _submit_chunk(intake, raw)
    try:
        async for attempt in stamina.retry_context(
            on=NotTaken, attempts=None, timeout=retry_for_s, wait_initial=0.5, wait_max=10.0
        ):
            with attempt:
                again = [r.index for r in results if r.outcome is Outcome.UNAVAILABLE]
                if not again:
                    break
                totals.retried += len(again)
                for index, result in zip(
                    again, await _submit_chunk(intake, [raw[i] for i in again]), strict=True
                ):
                    results[index] = replace(result, index=index)
                if any(r.outcome is Outcome.UNAVAILABLE for r in results):
                    raise NotTaken
    except NotTaken:
        console.print(f"[yellow]gave up after {retry_for_s:.0f} s of outage on a chunk[/yellow]")
    return results


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


def _summary(totals: Totals, report_path: Path) -> None:
    table = Table(title="import summary")
    table.add_column("outcome")
    table.add_column("orders", justify="right")
    for outcome in Outcome:
        label = "failed after retries" if outcome is Outcome.UNAVAILABLE else outcome.value
        table.add_row(label, str(totals.outcomes[outcome]))
    table.add_row("retried", str(totals.retried))
    console.print(table)
    outcomes = totals.outcomes
    rejected = sum(outcomes.values()) - outcomes[Outcome.ACCEPTED] - outcomes[Outcome.DUPLICATE]
    if rejected:
        console.print(f"rejected lines with field and problem: {report_path}")

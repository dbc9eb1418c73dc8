"""``ordertag rules ...`` and ``ordertag figures ...``: the tagger's command line."""

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.tagger.figures import rebuild_figures
from services.tagger.rules.engine import explain as explain_rules
from services.tagger.rules.facts import FACT_NAMES, FiguresSnapshot, order_facts
from services.tagger.rules.schema import RuleFileError, load_rules
from services.tagger.settings import TaggerSettings
from services.tagger.store import OrderStore
from shared.models import Order
from shared.mongo import make_mongo_client
from shared.redis import make_redis
from shared.stored_order import figures_record

console = Console()
rules_app = typer.Typer(help="Check and explain tag rule files.", no_args_is_help=True)
figures_app = typer.Typer(help="Customer figures in Redis.", no_args_is_help=True)

ExistingFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


@rules_app.command("check")
def check(file: ExistingFile) -> None:
    """Validate a rule file; exit 1 with the rule id, field and problem if it is invalid."""
    try:
        rules = load_rules(file)
    except RuleFileError as error:
        console.print(f"[red]invalid[/red] {error}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]ok[/green] {file}: {len(rules.rules)} rules, {len(rules.tags)} catalog tags, "
        f"{len(rules.families)} families"
    )


@rules_app.command("explain")
def explain(
    file: ExistingFile,
    order_file: ExistingFile,
    figures: Annotated[
        Path | None,
        typer.Option(
            help="JSON of the customer's figures before this order (default: none): a stored"
            " order's `figures`, or a Redis snapshot's names"
        ),
    ] = None,
) -> None:
    """Show which rules fire for an order and why, touching no store."""
    try:
        rules = load_rules(file)
    except RuleFileError as error:
        console.print(f"[red]invalid[/red] {error}")
        raise typer.Exit(1) from None
    order = Order.model_validate_json(order_file.read_text(encoding="utf-8"))
    snapshot = FiguresSnapshot()
    if figures is not None:
        # either a stored order's names (``FIGURE_NAMES``) or the snapshot's own
        snapshot = FiguresSnapshot.from_record(figures_record(json.loads(figures.read_text())))
    facts = order_facts(order, snapshot)
    verdicts = explain_rules(rules, facts)

    table = Table(title=f"rules for order {order.order_no}")
    for column in ("rule", "version", "fires", "tag", "reason"):
        table.add_column(column)
    for verdict in verdicts:
        if verdict.decision:
            fires = "[green]yes[/green]"
        elif verdict.matches:
            fires = "[yellow]matches[/yellow], tag taken by an earlier rule"
        else:
            fires = "no"
        table.add_row(
            verdict.rule_id,
            str(verdict.version),
            fires,
            verdict.decision.tag if verdict.decision else "",
            verdict.decision.reason if verdict.decision else "",
        )
    console.print(table)
    console.print("tags: " + ", ".join(v.decision.tag for v in verdicts if v.decision))
    shown = {name: facts[name] for name in FACT_NAMES}
    console.print_json(json.dumps(shown, default=str, ensure_ascii=False))


@figures_app.command("rebuild")
def rebuild() -> None:
    """Recompute every customer's figures in Redis from MongoDB; running taggers wait for it."""
    settings = TaggerSettings()
    count = asyncio.run(_rebuild(settings))
    console.print(f"[green]rebuilt[/green] figures from {count} orders")


async def _rebuild(settings: TaggerSettings) -> int:
    mongo = make_mongo_client(settings)
    redis = make_redis(settings, socket_timeout_s=30)  # a rebuild writes in large batches
    try:
        return await rebuild_figures(redis, OrderStore(mongo[settings.mongo_database]).all_orders())
    finally:
        await redis.aclose()
        await mongo.close()

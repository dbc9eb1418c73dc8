"""``ordertag ruleset ...``: the history of rule sets, the diff of a candidate against stored
orders, shadow mode, and activation and rollback with a backfill. (``ordertag rules ...``
checks and explains one file.)"""

import asyncio
import csv
import getpass
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.tagger.bootstrap import RecordedJobs
from services.tagger.errors import TaggerError
from services.tagger.queries import OrderFilter
from services.tagger.read_model import ReadModel
from services.tagger.rule_activation import Activated, RuleActivation
from services.tagger.rule_changes import ReplayWindow, StoredOrders, diff_against_history
from services.tagger.rule_diff_job import CHANGE_COLUMNS, change_row
from services.tagger.rule_versions import RuleVersions
from services.tagger.rules.diff import RuleDiff
from services.tagger.rules.schema import RuleFileError, RuleSet, load_rules
from services.tagger.settings import TaggerSettings
from shared.models import OrderStatus
from shared.mongo import make_mongo_client

console = Console()
ruleset_app = typer.Typer(
    help="Rule-set versions: history, diff against stored orders, shadow mode, activate, "
    "roll back.",
    no_args_is_help=True,
)
ExistingFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
DURATION = re.compile(r"^(\d+)([dhw])$")
FILTER_KEYS = ("tag", "status", "region", "customer_id")


def parse_since(text: str, now: datetime) -> datetime:
    """``90d``, ``12h`` or ``4w`` before ``now``."""
    match = DURATION.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r}: give a number and d, h or w, e.g. 90d")
    count, unit = int(match.group(1)), match.group(2)
    return now - timedelta(**{{"d": "days", "h": "hours", "w": "weeks"}[unit]: count})


def parse_filters(
    filters: list[str], since: datetime | None
) -> tuple[ReplayWindow, frozenset[str] | None]:
    """``tag=NAME`` (repeatable) limits the report to those tags; ``status=``, ``region=`` and
    ``customer_id=`` limit the orders replayed."""
    tags: set[str] = set()
    fields: dict[str, str] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in FILTER_KEYS or not value:
            raise typer.BadParameter(
                f"{item!r}: give KEY=VALUE with KEY one of {', '.join(FILTER_KEYS)}"
            )
        if key == "tag":
            tags.add(value)
        else:
            fields[key] = value
    try:
        status = OrderStatus(fields["status"]) if "status" in fields else None
    except ValueError:
        known = ", ".join(s.value for s in OrderStatus)
        raise typer.BadParameter(f"status={fields['status']!r}: one of {known}") from None
    window = ReplayWindow(
        since=since,
        status=status,
        region=fields.get("region"),
        customer_id=fields.get("customer_id"),
    )
    return window, frozenset(tags) if tags else None


def _load(file: Path) -> RuleSet:
    try:
        return load_rules(file)
    except RuleFileError as error:
        console.print(f"[red]invalid[/red] {error}")
        raise typer.Exit(1) from None


@asynccontextmanager
async def _versions(settings: TaggerSettings) -> AsyncIterator[tuple[RuleVersions, StoredOrders]]:
    mongo = make_mongo_client(settings, serverSelectionTimeoutMS=settings.tagger_mongo_timeout_ms)
    try:
        database = mongo[settings.mongo_database]
        yield RuleVersions(database), StoredOrders(database)
    finally:
        await mongo.close()


@ruleset_app.command("history")
def history(limit: Annotated[int, typer.Option(min=1, max=500)] = 20) -> None:
    """The rule sets that were active, newest first (and the one in shadow, if any)."""
    asyncio.run(_history(TaggerSettings(), limit))


async def _history(settings: TaggerSettings, limit: int) -> None:
    async with _versions(settings) as (versions, _):
        rows = await versions.history(limit)
        shadow = await versions.shadow_version()
        active = await versions.active_rules()
    table = Table(title="rule-set versions (newest active first)")
    for column in (
        "version",
        "rules",
        "last active",
        "first active",
        "activations",
        "by",
        "comment",
    ):
        table.add_column(
            column, no_wrap=column == "version", min_width=25 if column == "version" else None
        )
    for row in rows:
        mark = " [yellow](shadow)[/yellow]" if row.version == shadow else ""
        if active is not None and row.version == active.version:
            mark = " [green](active)[/green]"
        table.add_row(
            row.version + mark,
            str(row.rules),
            _when(row.last_active_at),
            _when(row.first_active_at)
            if row.first_active_at
            else f"recorded {_when(row.recorded_at)}",
            str(row.activations),
            row.by,
            row.comment,
        )
    console.print(table)


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@ruleset_app.command("diff")
def diff(
    candidate: ExistingFile,
    since: Annotated[
        str | None, typer.Option(help="only orders created in the last 90d, 12h, 4w")
    ] = None,
    filter_: Annotated[
        list[str],
        typer.Option(
            "--filter", help="tag=NAME (report only that tag), status=, region=, customer_id="
        ),
    ] = [],  # noqa: B006  (typer copies defaults)
    active: Annotated[
        Path | None, typer.Option(help="the active rule file (default: the tagger's)")
    ] = None,
    csv_path: Annotated[Path, typer.Option("--csv", help="every changed order")] = Path(
        "rules-diff.csv"
    ),
) -> None:
    """Replay stored orders (with the figures each was tagged with) through the active and the
    candidate rules: per tag, the orders that would gain or lose it. Writes nothing to the store."""
    settings = TaggerSettings()
    active_rules = _load(active or settings.tagger_rules_file)
    candidate_rules = _load(candidate)
    start = parse_since(since, datetime.now(UTC)) if since else None
    window, only_tags = parse_filters(filter_, start)
    started = datetime.now(UTC)
    tally = asyncio.run(_diff(settings, active_rules, candidate_rules, window, only_tags, csv_path))
    seconds = max((datetime.now(UTC) - started).total_seconds(), 1e-9)
    _print_report(tally, csv_path, seconds)


async def _diff(
    settings: TaggerSettings,
    active: RuleSet,
    candidate: RuleSet,
    window: ReplayWindow,
    only_tags: frozenset[str] | None,
    csv_path: Path,
) -> RuleDiff:
    async with _versions(settings) as (_, orders):
        total = await orders.count(window)
        with (
            # with a BOM: Excel reads UTF-8 without one in the local code page (garbled Chinese)
            csv_path.open("w", newline="", encoding="utf-8-sig") as out,
            Progress(
                TextColumn("replaying"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress,
        ):
            writer = csv.writer(out)
            writer.writerow(CHANGE_COLUMNS)
            task = progress.add_task("replay", total=total)
            return await diff_against_history(
                orders,
                active,
                candidate,
                window=window,
                max_tags=settings.tagger_max_tags_per_order,
                only_tags=only_tags,
                on_changed=lambda changed: writer.writerows(change_row(d) for d in changed),
                on_progress=lambda done: progress.update(task, completed=done),
            )


def _print_report(tally: RuleDiff, csv_path: Path, seconds: float) -> None:
    console.print(
        f"{tally.orders_compared} orders replayed in {seconds:.1f} s "
        f"({tally.orders_compared / seconds:,.0f} orders/s); "
        f"[bold]{tally.orders_changed}[/bold] would change"
    )
    if not tally.by_tag:
        console.print("[green]no order's tags would change[/green]")
        return
    table = Table(title="per tag")
    for column in ("tag", "gain", "lose", "examples"):
        table.add_column(column)
    for name, delta in sorted(tally.by_tag.items()):
        examples = [f"+{n}" for n in delta.gained_examples] + [f"-{n}" for n in delta.lost_examples]
        table.add_row(name, str(delta.gained), str(delta.lost), " ".join(examples))
    console.print(table)
    console.print(f"every changed order: {csv_path}")


@ruleset_app.command("record")
def record(
    file: ExistingFile,
    comment: Annotated[str, typer.Option(help="why this rule set")] = "",
    by: Annotated[str | None, typer.Option(help="who (default: the login name)")] = None,
) -> None:
    """Store a candidate rule set as a version (not active), e.g. to run it in shadow."""
    rules = _load(file)
    text = file.read_text(encoding="utf-8")
    try:
        version = asyncio.run(
            _record(TaggerSettings(), text, rules, by or getpass.getuser(), comment)
        )
    except RuleFileError as error:  # it rewords a rule version once in force
        console.print(f"[red]invalid[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"[green]recorded[/green] version {version} ({len(rules.rules)} rules)")


async def _record(
    settings: TaggerSettings, text: str, rules: RuleSet, by: str, comment: str
) -> str:
    async with _versions(settings) as (versions, _):
        await versions.ensure_indexes()
        return await versions.record(text, rules, by=by, comment=comment, active=False)


@ruleset_app.command("shadow")
def shadow(
    version: Annotated[str | None, typer.Argument(help="a recorded version id")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="stop the shadow run")] = False,
) -> None:
    """Run a recorded version in shadow beside the active rules (taggers pick it up within
    seconds), stop it, or without arguments show its differences so far."""
    asyncio.run(_shadow(TaggerSettings(), version, stop))


async def _shadow(settings: TaggerSettings, version: str | None, stop: bool) -> None:
    async with _versions(settings) as (versions, _):
        if stop:
            await versions.stop_shadow()
            console.print("shadow stopped")
            return
        if version is not None:
            if await versions.get(version) is None:
                console.print(f"[red]no version {version!r}[/red]: record it first")
                raise typer.Exit(1)
            await versions.start_shadow(version)
            console.print(f"[green]shadow[/green] {version} runs beside the active rules")
            return
        summary = await versions.shadow_summary()
    if summary["version"] is None:
        console.print("no rule set runs in shadow")
        return
    console.print(
        f"shadow {summary['version']} since {summary['since']}: "
        f"{summary['orders_changed']} of {summary['orders_compared']} orders would change"
    )
    table = Table()
    for column in ("tag", "change", "rule", "orders"):
        table.add_column(column)
    for row in summary["differences"]:
        table.add_row(row["tag"], row["change"], row["rule_id"], str(row["orders"]))
    console.print(table)


Since = Annotated[
    str | None, typer.Option(help="backfill only orders created in the last 90d, 12h, 4w")
]
Filters = Annotated[
    list[str],
    typer.Option("--filter", help="backfill only orders of status=, region=, customer_id="),
]
NoBackfill = Annotated[
    bool, typer.Option("--no-backfill", help="only orders tagged from now on follow the version")
]
AlertNew = Annotated[
    bool, typer.Option("--alert-new-tags", help="alert on tags the backfill adds (default: no)")
]
Wait = Annotated[bool, typer.Option(help="follow the backfill's progress until it is done")]
JOB_POLL_S = 1.0


def backfill_filter(since: str | None, filters: list[str], no_backfill: bool) -> OrderFilter | None:
    if no_backfill:
        return None
    now = datetime.now(UTC)
    window, only_tags = parse_filters(filters, parse_since(since, now) if since else None)
    if only_tags:
        raise typer.BadParameter("tag= narrows a diff's report; a backfill re-derives every tag")
    return OrderFilter(
        created_from=window.since,
        status=window.status,
        region=window.region,
        customer_id=window.customer_id,
    )


@ruleset_app.command("activate")
def activate(
    version: Annotated[str, typer.Argument(help="a recorded version id (see history)")],
    since: Since = None,
    filter_: Filters = [],  # noqa: B006  (typer copies defaults)
    no_backfill: NoBackfill = False,
    alert_new_tags: AlertNew = False,
    wait: Wait = True,
    by: Annotated[str | None, typer.Option(help="who (default: the login name)")] = None,
) -> None:
    """Put a recorded version in force (taggers follow within seconds) and re-derive the tags of
    the stored orders (of the window) under it, as a job a tagger's jobs role runs."""
    which = backfill_filter(since, filter_, no_backfill)
    asyncio.run(
        _activate(TaggerSettings(), version, which, alert_new_tags, wait, by or getpass.getuser())
    )


@ruleset_app.command("rollback")
def rollback(
    version: Annotated[
        str | None, typer.Argument(help="default: the version active before the current one")
    ] = None,
    since: Since = None,
    filter_: Filters = [],  # noqa: B006  (typer copies defaults)
    no_backfill: NoBackfill = False,
    alert_new_tags: AlertNew = False,
    wait: Wait = True,
    by: Annotated[str | None, typer.Option(help="who (default: the login name)")] = None,
) -> None:
    """Back to an earlier version, the same way as an activation (backfill included)."""
    which = backfill_filter(since, filter_, no_backfill)
    asyncio.run(
        _activate(
            TaggerSettings(),
            version,
            which,
            alert_new_tags,
            wait,
            by or getpass.getuser(),
            back=True,
        )
    )


async def _activate(
    settings: TaggerSettings,
    version: str | None,
    which: OrderFilter | None,
    alert: bool,
    wait: bool,
    by: str,
    *,
    back: bool = False,
) -> None:
    mongo = make_mongo_client(settings, serverSelectionTimeoutMS=settings.tagger_mongo_timeout_ms)
    try:
        database = mongo[settings.mongo_database]
        versions = RuleVersions(database)
        jobs = RecordedJobs(database, None)  # a tagger's jobs role runs it
        activation = RuleActivation(versions, jobs, ReadModel(database).count)
        try:
            if back:
                done = await activation.rollback(version, by=by, backfill=which, alert=alert)
            else:
                assert version is not None
                done = await activation.activate(version, by=by, backfill=which, alert=alert)
        except TaggerError as error:
            console.print(f"[red]refused[/red] {error}")
            raise typer.Exit(1) from None
        _print_activated(done)
        if done.job_id is not None and wait:
            await _follow(jobs, done.job_id, done.orders)
    finally:
        await mongo.close()


def _print_activated(done: Activated) -> None:
    console.print(
        f"[green]active[/green] {done.version} (before: {done.previous or '—'}); "
        "taggers follow within seconds"
    )
    if done.job_id is None:
        console.print("no backfill: stored orders keep their tags until they change")
    else:
        console.print(f"backfill job {done.job_id}: {done.orders} orders to re-derive")


async def _follow(jobs: RecordedJobs, job_id: str, total: int) -> None:
    """Show a job's progress until it is done; Ctrl-C stops watching, not the job."""
    with Progress(
        TextColumn("re-deriving"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[changed]} changed"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("backfill", total=total, changed=0)
        while True:
            job = await jobs.get(job_id)
            if job is None:
                break
            progress.update(task, completed=job["processed"], changed=job["changed"])
            if job["status"] != "running":
                break
            await asyncio.sleep(JOB_POLL_S)
    if job is None or job["status"] != "done":
        console.print(
            f"[red]backfill {job_id} {job and job['status']}[/red]: {job and job.get('error')}"
        )
        raise typer.Exit(1)
    console.print(f"[green]done[/green] {job['processed']} orders, {job['changed']} changed")

"""Rule sets: the versions that were active, the diff of a candidate against stored orders,
the candidate running in shadow, and activation and rollback with a backfill. Reads need
``read``; anything that records or changes a setting, and starting a diff (a job replaying the
whole window), needs ``admin``.

A candidate is sent as the rule file itself (YAML, ``text/plain`` or ``application/yaml``); an
invalid one is refused with 422 naming the rule, the field and the problem."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.tagger.errors import Invalid, NotFound
from services.tagger.http.deps import Admin, Reader, tagger_of
from services.tagger.http.errors import responses
from services.tagger.jobs import DIFF_KIND
from services.tagger.queries import OrderFilter, TagName
from services.tagger.rule_changes import ReplayWindow
from services.tagger.rule_diff_job import CHANGE_COLUMNS, DiffRequest
from services.tagger.rules.schema import RuleFileError, RuleSet, parse_rules
from shared.exports import CSV, Row, csv_export, export_responses
from shared.models import OrderStatus

router = APIRouter(tags=["rules"], responses=responses(401, 403, 422, 429, 503))

VERSION_PATTERN = r"^[0-9a-f]{16}$"
YAML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "a rule file (YAML), as `ordertag rules check` takes it",
        "content": {"text/plain": {"schema": {"type": "string", "maxLength": 1_000_000}}},
    }
}


class DiffSummary(BaseModel):
    job_id: str
    active: str
    status: str
    started_at: str | None
    finished_at: str | None
    orders_compared: int | None
    orders_changed: int | None


class VersionSummary(BaseModel):
    version: str = Field(description="hash of the rule file's content")
    by: str
    comment: str
    recorded_at: str
    first_active_at: str | None = Field(description="None: a candidate, never active")
    last_active_at: str | None
    activations: int = Field(description="times it became active (0: recorded, never active)")
    rules: int
    last_diff: DiffSummary | None = Field(
        default=None, description="its latest diff against the rules then active"
    )


class Versions(BaseModel):
    active: str = Field(description="the version this process runs")
    shadow: str | None = Field(description="the version running in shadow, if any")
    versions: list[VersionSummary]


class Recorded(BaseModel):
    version: str
    rules: int


class TagChanges(BaseModel):
    tag: str
    gained: int
    lost: int
    gained_examples: list[str]
    lost_examples: list[str]


class RuleChanges(BaseModel):
    rule_id: str
    tag: str
    change: str
    orders: int


class DiffStarted(BaseModel):
    """A diff job just recorded; its progress and report: ``GET /rules/diffs/{job_id}``."""

    job_id: str
    status: str = Field(description="`running` (a jobs replica runs it)")
    active: str = Field(description="the version the candidate is compared with")
    candidate: str
    orders: int = Field(description="stored orders in the window")


class DiffJob(BaseModel):
    """A diff's progress and its report so far (complete once ``status`` is ``done``); nothing
    written to any order."""

    job_id: str
    status: str = Field(description="`running`, `done` or `failed` (see `error`)")
    active: str
    candidate: str
    total: int = Field(description="stored orders in the window when the diff started")
    processed: int = Field(description="orders compared so far")
    orders_changed: int
    seconds: float = Field(description="from its start to its latest progress (its end once done)")
    tags: list[TagChanges]
    rules: list[RuleChanges]
    changes_csv: str = Field(
        description="every changed order so far as CSV (UTF-8 with BOM, for Excel): order "
        "number, customer, time, tags gained and lost, the rules behind them"
    )
    changes_kept: int = Field(description="changed orders in that CSV")
    changes_left_out: int = Field(
        description="changed orders past the CSV's limit (250,000 per diff), left out of it"
    )
    error: str | None = None


class KeptDiff(BaseModel):
    """The latest diff of a version, kept with it."""

    job_id: str
    status: str
    active: str
    started_at: str
    finished_at: str | None
    orders_compared: int | None
    orders_changed: int | None
    tags: list[TagChanges]
    rules: list[RuleChanges]


class ShadowStart(BaseModel):
    version: str = Field(pattern=VERSION_PATTERN, description="a recorded version id")


class ShadowSummary(BaseModel):
    version: str | None
    since: str | None
    orders_compared: int
    orders_changed: int
    differences: list[RuleChanges]


class BackfillWindow(BaseModel):
    """Which stored orders to re-derive under the version put in force (all: ``{}``)."""

    since_days: int | None = Field(default=None, ge=1, le=3660)
    status: OrderStatus | None = None
    region: str | None = Field(default=None, min_length=1, max_length=32)
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)

    def order_filter(self, now: datetime) -> OrderFilter:
        since = now - timedelta(days=self.since_days) if self.since_days else None
        return OrderFilter(
            created_from=since,
            status=self.status,
            region=self.region,
            customer_id=self.customer_id,
        )


class Activate(BaseModel):
    version: str = Field(pattern=VERSION_PATTERN, description="a recorded version id")
    backfill: BackfillWindow | None = Field(
        default=None, description="re-derive the tags of these stored orders (none: only new)"
    )
    alert_new_tags: bool = Field(
        default=False, description="alert on tags the backfill adds (by default it does not)"
    )


class Rollback(BaseModel):
    version: str | None = Field(
        default=None, pattern=VERSION_PATTERN, description="default: the one active before"
    )
    backfill: BackfillWindow | None = None
    alert_new_tags: bool = False


class Activation(BaseModel):
    version: str = Field(description="the version now in force")
    previous: str | None
    job_id: str | None = Field(description="the backfill job (GET /jobs/{job_id}), if any")
    orders: int = Field(description="orders in the backfill's window")


class ActiveSummary(BaseModel):
    version: str
    file_version: str
    previous: str | None
    since: str
    by: str


class ActiveState(BaseModel):
    active: ActiveSummary | None = Field(description="what every tagger follows")
    running_backfill: str | None = Field(description="the job id of a backfill still running")


async def candidate_of(request: Request) -> tuple[str, RuleSet]:
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        return text, parse_rules(text, "candidate")
    except RuleFileError as error:
        raise _invalid(error) from None


async def record_candidate(
    request: Request, text: str, rules: RuleSet, *, by: str, comment: str
) -> str:
    """Record a candidate as a version (not active); 422 for one that rewords a rule version
    once in force (``keep_words``)."""
    try:
        return await tagger_of(request).rule_versions.record(
            text, rules, by=by, comment=comment, active=False
        )
    except RuleFileError as error:
        raise _invalid(error) from None


def _invalid(error: RuleFileError) -> Invalid:
    where, problem = error.problems[0]
    return Invalid(where, problem, detail=str(error))


@router.get("/rules/versions")
async def list_versions(
    key: Reader, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Versions:
    """The rule sets that were active, newest first, and the ones active and in shadow."""
    tagger = tagger_of(request)
    versions = tagger.rule_versions
    rows = await versions.history(limit)
    return Versions(
        active=tagger.rules.version,
        shadow=await versions.shadow_version(),
        versions=[VersionSummary.model_validate(row.summary()) for row in rows],
    )


@router.post(
    "/rules/versions",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=YAML_BODY,
    responses=responses(413),
)
async def record_version(
    key: Admin, request: Request, comment: Annotated[str, Query(max_length=300)] = ""
) -> Recorded:
    """Record a candidate rule set as a version (not active), e.g. to run it in shadow."""
    text, rules = await candidate_of(request)
    version = await record_candidate(request, text, rules, by=key.name, comment=comment)
    return Recorded(version=version, rules=len(rules.rules))


@router.post(
    "/rules/diff",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=YAML_BODY,
    responses=responses(413),
)
async def diff(
    key: Admin,
    request: Request,
    since_days: Annotated[int | None, Query(ge=1, le=3660)] = None,
    tag: Annotated[list[TagName], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    comment: Annotated[str, Query(max_length=300)] = "",
) -> DiffStarted:
    """Record the candidate as a version and start its diff as a job: the stored orders (with
    the figures each was tagged with) replayed through the active and the candidate rules,
    per tag how many orders would gain or lose it, with examples. Only ``tag`` tags are
    reported when given; ``since_days`` and the others narrow the orders. Progress and report:
    ``GET /rules/diffs/{job_id}``; the finished report is also kept with the version."""
    text, rules = await candidate_of(request)
    version = await record_candidate(request, text, rules, by=key.name, comment=comment)
    window = _window(since_days, status_, region, customer_id)
    return await _start_diff(request, version, window, frozenset(tag) or None)


@router.post(
    "/rules/versions/{version}/diff",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(404),
)
async def diff_version(
    key: Admin,
    request: Request,
    version: Annotated[str, Path(pattern=VERSION_PATTERN)],
    since_days: Annotated[int | None, Query(ge=1, le=3660)] = None,
    tag: Annotated[list[TagName], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
) -> DiffStarted:
    """Start the diff of a recorded version against the active rules (as ``POST /rules/diff``
    with its content): what the console shows before an activation."""
    window = _window(since_days, None, None, None)
    return await _start_diff(request, version, window, frozenset(tag) or None)


@router.get("/rules/diffs/{job_id}", responses=responses(404))
async def diff_job(
    key: Reader, request: Request, job_id: Annotated[str, Path(max_length=64)]
) -> DiffJob:
    """A diff's progress and its report so far (final once ``status`` is ``done``)."""
    job = await tagger_of(request).jobs.get(job_id)
    if job is None or job.get("kind") != DIFF_KIND:
        raise NotFound(f"no diff job {job_id!r}")
    report = job.get("result") or {"orders_changed": 0, "tags": [], "rules": []}
    kept = int(job.get("changes_kept", 0))
    return DiffJob(
        job_id=job_id,
        status=job["status"],
        active=job["diff"]["active"],
        candidate=job["diff"]["candidate"],
        total=job["total"],
        processed=job["processed"],
        orders_changed=report["orders_changed"],
        seconds=round((job["updated_at"] - job["created_at"]).total_seconds(), 3),
        tags=report["tags"],
        rules=report["rules"],
        changes_csv=f"/rules/diffs/{job_id}/changes.csv",
        changes_kept=kept,
        changes_left_out=report["orders_changed"] - kept,
        error=job.get("error"),
    )


@router.get(
    "/rules/diffs/{job_id}/changes.csv",
    response_class=StreamingResponse,
    responses={**responses(404), **export_responses(CSV, "every changed order (UTF-8, BOM)")},
)
async def diff_changes(
    key: Reader, request: Request, job_id: Annotated[str, Path(max_length=64)]
) -> StreamingResponse:
    """Every order the diff found changing (so far, while it runs), by order number: its
    customer and time, the tags it would gain and lose (space-separated) and the rule behind
    each. Streamed; UTF-8 with a BOM so Excel shows Chinese as it is."""
    tagger = tagger_of(request)
    job = await tagger.jobs.get(job_id)
    if job is None or job.get("kind") != DIFF_KIND:
        raise NotFound(f"no diff job {job_id!r}")
    stored = tagger.rule_diffs.changes.rows(job_id)
    rows = (dict(zip(CHANGE_COLUMNS, row, strict=True)) async for row in stored)
    return await csv_export(rows, CHANGE_COLUMNS, _change_cells, f"rules-diff-{job_id}.csv")


def _change_cells(row: Row) -> list[Any]:
    return [row[column] for column in CHANGE_COLUMNS]


@router.get("/rules/versions/{version}/diff", responses=responses(404))
async def kept_diff(
    key: Reader, request: Request, version: Annotated[str, Path(pattern=VERSION_PATTERN)]
) -> KeptDiff:
    """The latest diff of a version, kept with it (its report once done)."""
    stored = await tagger_of(request).rule_versions.get(version)
    if stored is None:
        raise NotFound(f"no rule version {version!r}")
    if stored.last_diff is None:
        raise NotFound(f"rule version {version!r} has no diff yet (POST its /diff)")
    kept = stored.last_diff
    report = kept.get("report") or {}
    return KeptDiff(
        job_id=kept["job_id"],
        status=kept["status"],
        active=kept["active"],
        started_at=kept["started_at"].isoformat(),
        finished_at=None if kept.get("finished_at") is None else kept["finished_at"].isoformat(),
        orders_compared=report.get("orders_compared"),
        orders_changed=report.get("orders_changed"),
        tags=report.get("tags", []),
        rules=report.get("rules", []),
    )


def _window(
    since_days: int | None,
    status_: OrderStatus | None,
    region: str | None,
    customer_id: str | None,
) -> ReplayWindow:
    since = datetime.now(UTC) - timedelta(days=since_days) if since_days else None
    return ReplayWindow(since=since, status=status_, region=region, customer_id=customer_id)


async def _start_diff(
    request: Request, version: str, window: ReplayWindow, only_tags: frozenset[str] | None
) -> DiffStarted:
    tagger = tagger_of(request)
    in_force = await tagger.rule_versions.active_rules()
    active = in_force.version if in_force is not None else tagger.rules.version
    job_id, total = await tagger.rule_diffs.start(
        tagger.jobs, DiffRequest(version, active, window, only_tags)
    )
    return DiffStarted(
        job_id=job_id, status="running", active=active, candidate=version, orders=total
    )


@router.get("/rules/shadow")
async def shadow_summary(key: Reader, request: Request) -> ShadowSummary:
    """The version running in shadow and its differences so far, per rule and tag."""
    return ShadowSummary.model_validate(await tagger_of(request).rule_versions.shadow_summary())


@router.put("/rules/shadow", responses=responses(404, 413))
async def start_shadow(key: Admin, request: Request, body: ShadowStart) -> ShadowSummary:
    """Run a recorded version in shadow beside the active rules (its tally from zero); the
    taggers pick it up within seconds. Nothing it decides is written to an order."""
    versions = tagger_of(request).rule_versions
    if await versions.get(body.version) is None:
        raise NotFound(f"no rule version {body.version!r}: record it first (POST /rules/versions)")
    await versions.start_shadow(body.version)
    return ShadowSummary.model_validate(await versions.shadow_summary())


@router.delete("/rules/shadow", status_code=status.HTTP_204_NO_CONTENT)
async def stop_shadow(key: Admin, request: Request) -> None:
    """Stop the shadow run (its tally stays until a run of the same version starts)."""
    await tagger_of(request).rule_versions.stop_shadow()


@router.get("/rules/active")
async def active(key: Reader, request: Request) -> ActiveState:
    """The version in force, what was before, and a backfill still running."""
    tagger = tagger_of(request)
    current = await tagger.rule_versions.active_rules()
    return ActiveState(
        active=None if current is None else ActiveSummary.model_validate(current.summary()),
        running_backfill=await tagger.jobs.running_backfill(),
    )


@router.put(
    "/rules/active", status_code=status.HTTP_202_ACCEPTED, responses=responses(404, 409, 413)
)
async def activate(key: Admin, request: Request, body: Activate) -> Activation:
    """Put a recorded version in force (every tagger follows within seconds) and, with
    ``backfill``, re-derive the tags of the stored orders of that window under it as a job
    (its progress: ``GET /jobs/{job_id}``). 409 while an earlier backfill still runs."""
    done = await tagger_of(request).activation.activate(
        body.version,
        by=key.name,
        backfill=body.backfill.order_filter(datetime.now(UTC)) if body.backfill else None,
        alert=body.alert_new_tags,
    )
    return Activation.model_validate(done.summary())


@router.post(
    "/rules/rollback", status_code=status.HTTP_202_ACCEPTED, responses=responses(404, 409, 413)
)
async def rollback(key: Admin, request: Request, body: Rollback) -> Activation:
    """Back to an earlier version (default: the one active before), the same way as an
    activation, backfill included."""
    done = await tagger_of(request).activation.rollback(
        body.version,
        by=key.name,
        backfill=body.backfill.order_filter(datetime.now(UTC)) if body.backfill else None,
        alert=body.alert_new_tags,
    )
    return Activation.model_validate(done.summary())

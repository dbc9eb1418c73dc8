"""Rule sets: the versions that were active, the diff of a candidate against stored orders,
the candidate running in shadow, and activation and rollback with a backfill. Reads need
``read``; anything that records or changes a setting, and the diff (it replays the whole
window), needs ``admin``.

A candidate is sent as the rule file itself (YAML, ``text/plain`` or ``application/yaml``); an
invalid one is refused with 422 naming the rule, the field and the problem."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from services.tagger.errors import Invalid, NotFound
from services.tagger.http.deps import Admin, Reader, tagger_of
from services.tagger.http.errors import responses
from services.tagger.queries import OrderFilter, TagName
from services.tagger.rule_changes import ReplayWindow, diff_against_history
from services.tagger.rules.book import version_of
from services.tagger.rules.schema import RuleFileError, RuleSet, parse_rules
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


class VersionSummary(BaseModel):
    version: str = Field(description="hash of the rule file's content")
    by: str
    comment: str
    recorded_at: str
    first_active_at: str | None = Field(description="None: a candidate, never active")
    last_active_at: str | None
    activations: int = Field(description="times it became active (0: recorded, never active)")
    rules: int


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


class DiffReport(BaseModel):
    """What the candidate would change on the stored orders of the window; nothing written."""

    status: str = Field(description="`completed`: the report covers the whole window")
    active: str
    candidate: str
    orders_compared: int
    orders_changed: int
    seconds: float
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
        where, problem = error.problems[0]
        raise Invalid(where, problem, detail=str(error)) from None


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
    version = await tagger_of(request).rule_versions.record(
        text, rules, by=key.name, comment=comment, active=False
    )
    return Recorded(version=version, rules=len(rules.rules))


@router.post("/rules/diff", openapi_extra=YAML_BODY, responses=responses(413))
async def diff(
    key: Admin,
    request: Request,
    since_days: Annotated[int | None, Query(ge=1, le=3660)] = None,
    tag: Annotated[list[TagName], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> DiffReport:
    """Replay the stored orders (with the figures each was tagged with) through the active and
    the candidate rules: per tag, how many orders would gain or lose it, with examples. Only
    ``tag`` tags are reported when given; ``since_days`` and the others narrow the orders."""
    tagger = tagger_of(request)
    text, candidate = await candidate_of(request)
    now = datetime.now(UTC)
    window = ReplayWindow(
        since=now - timedelta(days=since_days) if since_days else None,
        status=status_,
        region=region,
        customer_id=customer_id,
    )
    tally = await diff_against_history(
        tagger.stored_orders,
        tagger.rules.current,
        candidate,
        window=window,
        max_tags=tagger.settings.tagger_max_tags_per_order,
        only_tags=frozenset(tag) or None,
    )
    return DiffReport.model_validate(
        {
            "status": "completed",
            "active": tagger.rules.version,
            "candidate": version_of(text),
            "seconds": round((datetime.now(UTC) - now).total_seconds(), 3),
            **tally.report(),
        }
    )


@router.post("/rules/versions/{version}/diff", responses=responses(404))
async def diff_version(
    key: Admin,
    request: Request,
    version: Annotated[str, Path(pattern=VERSION_PATTERN)],
    since_days: Annotated[int | None, Query(ge=1, le=3660)] = None,
) -> DiffReport:
    """The diff of a recorded version against the active rules (as ``POST /rules/diff`` with
    its content): what the console shows before an activation."""
    tagger = tagger_of(request)
    stored = await tagger.rule_versions.get(version)
    if stored is None:
        raise NotFound(f"no rule version {version!r}")
    now = datetime.now(UTC)
    since = now - timedelta(days=since_days) if since_days else None
    tally = await diff_against_history(
        tagger.stored_orders,
        tagger.rules.current,
        stored.rule_set(),
        window=ReplayWindow(since=since),
        max_tags=tagger.settings.tagger_max_tags_per_order,
    )
    return DiffReport.model_validate(
        {
            "status": "completed",
            "active": tagger.rules.version,
            "candidate": version,
            "seconds": round((datetime.now(UTC) - now).total_seconds(), 3),
            **tally.report(),
        }
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

"""What the Tag API's routes depend on: the key (scope, then the rate limit), the use cases and
the read model and reports of this process, and the order filter read from query parameters."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from services.tagger.bootstrap import Tagger
from services.tagger.commands import TagCommands
from services.tagger.jobs import Jobs
from services.tagger.queries import AMOUNT_PATTERN, OrderFilter, TagName
from services.tagger.read_model import ReadModel
from services.tagger.reports import Reports
from services.tagger.usage import TagUsage
from shared.auth import ApiKey, Scope, require_scope
from shared.kept_counts import KeptCount
from shared.models import OrderStatus
from shared.ratelimit import over_limit

log = structlog.get_logger("tagger.http")

DATE_TIME: dict[str, Any] = {"format": "date-time", "examples": ["2026-11-01T00:00:00+08:00"]}
WINDOW_S = 60


def tagger_of(request: Request) -> Tagger:
    tagger: Tagger = request.app.state.tagger
    return tagger


def read_model_of(request: Request) -> ReadModel:
    return tagger_of(request).stores.read_model


def reports_of(request: Request) -> Reports:
    return tagger_of(request).stores.reports


def commands_of(request: Request) -> TagCommands:
    return tagger_of(request).commands


def jobs_of(request: Request) -> Jobs:
    return tagger_of(request).jobs


def tag_usage_of(request: Request) -> KeptCount[TagUsage]:
    return tagger_of(request).tag_usage


Queries = Annotated[ReadModel, Depends(read_model_of)]
ReportsDep = Annotated[Reports, Depends(reports_of)]
TagUsageDep = Annotated[KeptCount[TagUsage], Depends(tag_usage_of)]
JobsDep = Annotated[Jobs, Depends(jobs_of)]
Commands = Annotated[TagCommands, Depends(commands_of)]


def metered(scope: Scope, *, strict: bool) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """The scope check, then the key's per-minute count in Redis (shared by all processes).

    Redis unreachable: reads are counted in this process (MongoDB-only reads keep working);
    writes (``strict``) answer 503."""

    async def check(request: Request, key: ApiKey = Depends(require_scope(scope))) -> ApiKey:  # noqa: B008
        limiter = tagger_of(request).rate_limiter
        await limiter.check(
            f"key:{key.name}", over_limit(key.name, limiter.per_minute), strict=strict
        )
        return key

    return check


Reader = Annotated[ApiKey, Depends(metered(Scope.READ, strict=False))]
Editor = Annotated[ApiKey, Depends(metered(Scope.TAG, strict=True))]
Admin = Annotated[ApiKey, Depends(metered(Scope.ADMIN, strict=True))]


def order_filter(
    all_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
    any_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006
    none_tags: Annotated[list[TagName], Query()] = [],  # noqa: B006
    family: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            description="orders holding a tag of this family, or named `family:value`",
        ),
    ] = None,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    amount_min: Annotated[str | None, Query(pattern=AMOUNT_PATTERN, examples=["100.00"])] = None,
    amount_max: Annotated[str | None, Query(pattern=AMOUNT_PATTERN, examples=["2500.50"])] = None,
    created_from: Annotated[str | None, Query(max_length=40, json_schema_extra=DATE_TIME)] = None,
    created_to: Annotated[str | None, Query(max_length=40, json_schema_extra=DATE_TIME)] = None,
) -> OrderFilter:
    """Query parameters into an ``OrderFilter``; 422 naming the parameter when one is bad."""
    raw = {
        "all_tags": all_tags,
        "any_tags": any_tags,
        "none_tags": none_tags,
        "family": family,
        "status": status_,
        "customer_id": customer_id,
        "region": region,
        "amount_min": amount_min,
        "amount_max": amount_max,
        "created_from": created_from,
        "created_to": created_to,
    }
    try:
        return OrderFilter.model_validate({k: v for k, v in raw.items() if v not in (None, [])})
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


Filter = Annotated[OrderFilter, Depends(order_filter)]

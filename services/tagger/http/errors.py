"""The one place the tagger's exceptions become HTTP answers.

Every error answer has one body, documented on every route: ``{"detail", "errors"}``, where
``errors`` names each bad field. Bad input → 422 naming the field; a dependency down
(MongoDB, Redis, Kafka) → 503 with ``Retry-After``, never a 500.
"""

import re
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.tagger import metrics
from services.tagger.errors import Conflict, Gone, Invalid, NotFound, TaggerError, Unavailable
from services.tagger.manual import TagChangeRefused
from services.tagger.queries import BadCursor
from services.tagger.tagging import WriteConflictsPersist

log = structlog.get_logger("tagger.http")

MONGO_DOWN = (ConnectionFailure, ExecutionTimeout, WTimeoutError)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the field, e.g. `add.0` or `cursor`")
    problem: str


class ErrorBody(BaseModel):
    """Every error answer of the Tag API."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


LOCATIONS = ("body", "query", "path", "header")


def field_errors(errors: Any) -> list[dict[str, str]]:
    """pydantic errors as ``{"field": "add.0", "problem": ...}``: the field as the client named
    it (``region``, not ``query.region``); the input is not echoed back."""
    return [
        {
            "field": ".".join(str(p) for p in error["loc"] if p not in LOCATIONS) or "body",
            "problem": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in errors
    ]


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give."""
    described = {
        401: "no API key, or an unknown one",
        403: "the key lacks the scope",
        404: "no such order, tag or job",
        409: "clashes with the current state",
        410: "the tag was renamed or merged away (the detail names where)",
        413: "request body over the configured limit",
        422: "invalid input: `errors` names each field",
        429: "over the key's rate limit (see Retry-After)",
        503: "a dependency is unreachable (see Retry-After)",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


def error(
    code: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody.model_validate({"detail": detail, "errors": errors or []})
    return JSONResponse(body.model_dump(), status_code=code, headers=headers)


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    retry = {"Retry-After": str(retry_after_s)}

    def unavailable(request: Request, dependency: str, exc: BaseException) -> JSONResponse:
        metrics.DEPENDENCY_ERRORS.labels(dependency).inc()
        log.warning(
            "dependency_unreachable",
            dependency=dependency,
            path=request.url.path,
            error=type(exc).__name__,
        )
        return error(503, f"{dependency} is unreachable; retry later", headers=retry)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid request", field_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == status.HTTP_400_BAD_REQUEST:  # a body that is not JSON at all
            problem = [{"field": "body", "problem": str(exc.detail)}]
            return error(422, "invalid request", problem)
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            return error(405, str(exc.detail), headers={"Allow": _allowed(app, request)})
        return error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(TaggerError)
    async def tagger_error(request: Request, exc: TaggerError) -> JSONResponse:
        if isinstance(exc, Invalid):
            problems = [{"field": exc.field, "problem": exc.problem}]
            return error(422, exc.detail, problems)
        if isinstance(exc, NotFound):
            return error(404, str(exc))
        if isinstance(exc, Conflict):
            return error(409, str(exc))
        if isinstance(exc, Gone):
            return error(410, str(exc))
        if isinstance(exc, Unavailable):
            return unavailable(request, exc.dependency, exc)
        return error(422, str(exc))

    @app.exception_handler(TagChangeRefused)
    async def refused(_: Request, exc: TagChangeRefused) -> JSONResponse:
        return error(422, str(exc), [{"field": "add", "problem": str(exc)}])

    @app.exception_handler(BadCursor)
    async def bad_cursor(_: Request, exc: BadCursor) -> JSONResponse:
        return error(422, f"cursor: {exc}", [{"field": "cursor", "problem": str(exc)}])

    @app.exception_handler(WriteConflictsPersist)
    async def busy(_: Request, exc: WriteConflictsPersist) -> JSONResponse:
        return error(503, "the orders kept changing under this request; retry", headers=retry)

    for kinds, name in ((MONGO_DOWN, "MongoDB"), (REDIS_DOWN, "Redis"), ((KafkaError,), "Kafka")):
        for kind in kinds:
            app.add_exception_handler(kind, _outage_handler(unavailable, name))


def _allowed(app: FastAPI, request: Request) -> str:
    """The methods the OpenAPI document gives this path (Starlette names only the first
    matching route's). A literal path wins over a template: ``/tags/unused`` is its own
    resource, not ``/tags/{name}``."""
    paths: dict[str, dict[str, Any]] = app.openapi().get("paths", {})
    path = request.url.path
    documented = paths.get(path)
    if documented is None:
        documented = next(
            (
                operations
                for template, operations in paths.items()
                if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path)
            ),
            {},
        )
    return ", ".join(sorted(method.upper() for method in documented))


def _outage_handler(unavailable: Any, dependency: str) -> Any:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        result: JSONResponse = unavailable(request, dependency, exc)
        return result

    return handle

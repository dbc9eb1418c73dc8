"""One mapping from the notifier's exceptions to HTTP answers, one error body for every route:
``{"detail": ..., "errors": [{"field", "problem"}]}``. An outage of MongoDB or Redis is a 503
with ``Retry-After``, never a 500."""

from typing import Any

import structlog
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.notifier.errors import (
    KAFKA_OUTAGES,
    MONGO_OUTAGES,
    REDIS_OUTAGES,
    AlertNotFound,
    DependencyDown,
    outage_of,
)
from shared.http import field_errors

log = structlog.get_logger("notifier.http")
RETRY_AFTER_S = 5


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error the notifier answers has this shape."""

    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


def error_response(status_code: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(ErrorBody(detail=detail).model_dump(), status_code, headers=headers or None)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all with the one error body."""
    described = {
        400: "Bad request",
        401: "Not signed in (no session cookie nor API key)",
        403: "Forbidden (cross-site request)",
        404: "Not found",
        413: "Request body too large",
        422: "Invalid request: each field and its problem",
        429: "Too many requests; see Retry-After",
        503: "A dependency is down; retry after Retry-After seconds",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        body = ErrorBody(
            detail="invalid request",
            errors=[FieldProblem(**e) for e in field_errors(error.errors())],
        )
        return JSONResponse(body.model_dump(), status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            ErrorBody(detail=str(error.detail)).model_dump(),
            error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(AlertNotFound)
    async def not_found(_: Request, error: AlertNotFound) -> JSONResponse:
        return error_response(status.HTTP_404_NOT_FOUND, str(error))

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        dependency = outage_of(error) or "a dependency"
        retry_after = error.retry_after_s if isinstance(error, DependencyDown) else RETRY_AFTER_S
        log.warning(
            "dependency_down", path=request.url.path, dependency=dependency, error=repr(error)[:200]
        )
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{dependency} is unavailable; retry in {retry_after} s",
            **{"Retry-After": str(retry_after)},
        )

    for kind in (DependencyDown, *MONGO_OUTAGES, *REDIS_OUTAGES, *KAFKA_OUTAGES):
        app.add_exception_handler(kind, unavailable)  # type: ignore[arg-type]

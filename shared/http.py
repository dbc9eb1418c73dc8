"""HTTP pieces every service's API shares: one error body, the mapping of the exception tree to
answers (outages to 503 with Retry-After), the documentation of those answers, JSON-only bodies,
a body size limit."""

from typing import Any

import structlog
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound

log = structlog.get_logger("http")
_REQUEST_PARTS = ("body", "path", "query")


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error answer of every service: what went wrong, and per field when input was bad."""

    detail: str
    errors: list[FieldProblem] | None = None


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before sending the same request again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_DESCRIPTIONS = {
    400: "the body could not be read (not UTF-8, or cut off)",
    401: "missing or unknown API key",
    403: "the API key lacks the scope",
    404: "not found",
    409: "conflicts with what was accepted before",
    413: "request body over the size limit",
    415: "the body must be JSON (Content-Type: application/json)",
    422: "invalid input: `errors` names each field and its problem",
    429: "over the API key's rate limit; wait Retry-After seconds",
    503: "a dependency (Kafka, Redis, MongoDB) is unreachable; nothing was done, retry later",
}
_WITH_RETRY_AFTER = {429, 503}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error answers a route can give, all with ``ErrorBody``."""
    responses: dict[int | str, dict[str, Any]] = {}
    for code in statuses:
        response: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[code]}
        if code in _WITH_RETRY_AFTER:
            response["headers"] = _RETRY_AFTER
        responses[code] = response
    return responses


def field_errors(errors: Any) -> list[dict[str, str]]:
    """pydantic errors as ``{"field": "lines.0.quantity", "problem": "..."}``; the input is
    not echoed back (it may hold personal data)."""
    return [
        {
            "field": ".".join(str(p) for p in error["loc"] if p not in _REQUEST_PARTS) or "body",
            "problem": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in errors
    ]


def error_answer(
    status_code: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    retry_after_s: int | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse(body, status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """The one mapping from exceptions to answers; a service adds no other handler."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_answer(422, "invalid request", field_errors(error.errors()))

    @app.exception_handler(InvalidInput)
    async def invalid_input(_: Request, error: InvalidInput) -> JSONResponse:
        problems = [{"field": error.field, "problem": error.problem}]
        return error_answer(422, str(error), problems)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return error_answer(status.HTTP_404_NOT_FOUND, str(error))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return error_answer(status.HTTP_409_CONFLICT, str(error), retry_after_s=error.retry_after_s)

    @app.exception_handler(DependencyUnavailable)
    async def unavailable(_: Request, error: DependencyUnavailable) -> JSONResponse:
        log.warning("dependency_unavailable", dependency=error.dependency, error=str(error))
        return error_answer(503, str(error), retry_after_s=error.retry_after_s)

    # A Redis outage that a route did not translate is still an outage, not a bug in the request.
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def redis_unavailable(_: Request, error: Exception) -> JSONResponse:
        log.warning("dependency_unavailable", dependency="redis", error=repr(error))
        return error_answer(503, "Redis is unavailable; nothing was done, retry later", None, 5)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        return JSONResponse({"detail": error.detail}, error.status_code, headers=headers)


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def json_body_only(request: Request) -> None:
    """A route dependency: bodies in any other media type answer 415 (no guessing)."""
    if not is_json(request.headers.get("content-type")):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json",
        )


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            if refused:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than the limit of {self.max_bytes} bytes"},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        )
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}

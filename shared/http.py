"""HTTP pieces every service's API shares: one error body, the mapping of the exception tree to
answers (outages to 503 with Retry-After), the documentation of those answers, JSON-only bodies,
a body size limit."""

import re
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import (
    DEPENDENCY_NAMES,
    OUTAGES,
    Busy,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    OrdertagError,
    TooManyRequests,
)

log = structlog.get_logger("http")
_REQUEST_PARTS = ("body", "path", "query", "header")


class FieldProblem(BaseModel):
    field: str = Field(
        description="dotted path of the field as the client named it, e.g. `lines.0.sku`"
    )
    problem: str


class ErrorBody(BaseModel):
    """Every error answer of every service: what went wrong, and per field when input was bad."""

    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before sending the same request again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_DESCRIPTIONS = {
    400: "the body could not be read (not UTF-8, or cut off)",
    401: "not signed in: no API key or console session, or an unknown one",
    403: "not allowed: the key or role lacks the scope, or a cross-site request",
    404: "not found",
    405: "method not allowed on this path (see Allow)",
    409: "conflicts with what was accepted or stored before",
    410: "renamed or merged away (the detail names where)",
    413: "request body over the size limit",
    415: "the body must be JSON (Content-Type: application/json)",
    422: "invalid input: `errors` names each field and its problem",
    429: "over the rate limit; wait Retry-After seconds",
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


def field_errors(errors: Any, body: Any = None) -> list[dict[str, str]]:
    """pydantic errors as ``{"field": "lines.0.quantity", "problem": "..."}``; the input is
    not echoed back (it may hold personal data). A body that is not JSON at all is named
    ``body``, with where the JSON breaks (FastAPI puts that character's position in ``loc``,
    where it would read as a field named "12"); ``body`` is the text FastAPI could not parse."""
    return [
        {"field": "body", "problem": _not_json(error, body)}
        if error.get("type") == JSON_INVALID
        else {
            "field": ".".join(str(p) for p in error["loc"] if p not in _REQUEST_PARTS) or "body",
            "problem": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in errors
    ]


JSON_INVALID = "json_invalid"  # pydantic's error type, and FastAPI's for a body it cannot decode
NOT_JSON = "the body is not valid JSON"


def _not_json(error: Mapping[str, Any], body: Any) -> str:
    """What is wrong and where: FastAPI gives ``json``'s message and the character's position
    (the line and column are counted here); pydantic's message already says line and column."""
    reason = str(error.get("ctx", {}).get("error") or error["msg"])
    reason = reason.removeprefix("Invalid JSON: ")
    position = next((p for p in error["loc"] if isinstance(p, int)), None)
    if position is not None and isinstance(body, str) and 0 <= position <= len(body):
        line = body.count("\n", 0, position) + 1
        column = position - body.rfind("\n", 0, position)
        reason += f" at line {line}, column {column} (character {position})"
    return f"not valid JSON: {reason}"


def error_answer(
    status_code: int,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    retry_after_s: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody.model_validate({"detail": detail, "errors": errors or []})
    all_headers = dict(headers or {})
    if retry_after_s is not None:
        all_headers["Retry-After"] = str(retry_after_s)
    return JSONResponse(body.model_dump(), status_code, headers=all_headers or None)


Translation = Callable[[Any], OrdertagError]


def install_error_handlers(
    app: FastAPI,
    *,
    retry_after_s: int = 5,
    on_outage: Callable[[str], None] | None = None,
    translations: Mapping[type[Exception], Translation] | None = None,
) -> None:
    """The one mapping from exceptions to answers, for every service; a service adds no other
    handler. ``translations`` turn a service's domain exceptions (which know nothing of HTTP)
    into the shared tree; ``on_outage`` is told the dependency of each 503 (for a metric)."""

    def answer(request: Request, error: OrdertagError) -> JSONResponse:
        if isinstance(error, InvalidInput):
            return error_answer(
                422, error.detail, [{"field": error.field, "problem": error.problem}]
            )
        if isinstance(error, Forbidden):
            problems = [{"field": error.field, "problem": str(error)}] if error.field else None
            return error_answer(403, str(error), problems)
        if isinstance(error, NotFound):
            return error_answer(404, str(error))
        if isinstance(error, Gone):
            return error_answer(410, str(error))
        if isinstance(error, Conflict):
            return error_answer(409, str(error), retry_after_s=error.retry_after_s)
        if isinstance(error, TooManyRequests):
            return error_answer(429, str(error), retry_after_s=error.retry_after_s)
        if isinstance(error, Busy):
            return error_answer(503, str(error), retry_after_s=retry_after_s)
        if isinstance(error, DependencyUnavailable):
            return unavailable(request, error.dependency, error, str(error), error.retry_after_s)
        return error_answer(422, str(error))

    def unavailable(
        request: Request, dependency: str, error: BaseException, detail: str, wait: int | None
    ) -> JSONResponse:
        log.warning(
            "dependency_unavailable",
            dependency=dependency,
            path=request.url.path,
            error=repr(error)[:200],
        )
        if on_outage is not None:
            on_outage(dependency)
        return error_answer(503, detail, retry_after_s=wait or retry_after_s)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        not_json = any(e.get("type") == JSON_INVALID for e in errors)
        detail = NOT_JSON if not_json else "invalid request"
        return error_answer(422, detail, field_errors(errors, error.body))

    @app.exception_handler(OrdertagError)
    async def ordertag_error(request: Request, error: OrdertagError) -> JSONResponse:
        return answer(request, error)

    for kind, translate in (translations or {}).items():
        app.add_exception_handler(kind, _translated(answer, translate))

    for dependency, kinds in OUTAGES.items():
        name = DEPENDENCY_NAMES[dependency]
        for outage in kinds:
            app.add_exception_handler(outage, _outage(unavailable, name))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == status.HTTP_400_BAD_REQUEST:  # a body that is not JSON at all
            return error_answer(
                422, "invalid request", [{"field": "body", "problem": str(error.detail)}]
            )
        headers = dict(error.headers or {})
        if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            headers["Allow"] = _allowed(app, request)
        return error_answer(error.status_code, str(error.detail), headers=headers)


def _translated(
    answer: Callable[[Request, OrdertagError], JSONResponse], translate: Translation
) -> Any:
    async def handle(request: Request, error: Exception) -> JSONResponse:
        return answer(request, translate(error))

    return handle


def _outage(unavailable: Callable[..., JSONResponse], name: str) -> Any:
    async def handle(request: Request, error: Exception) -> JSONResponse:
        return unavailable(request, name, error, f"{name} is unreachable; retry later", None)

    return handle


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

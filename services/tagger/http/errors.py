"""The tagger's exceptions that live outside its error tree (domain modules know nothing of
HTTP), told to the one shared mapping (``shared/http.py``): every error answer has the body
``{"detail", "errors"}``; bad input is a 422 naming the field; a dependency down is a 503 with
``Retry-After``, never a 500."""

from fastapi import FastAPI

from services.tagger import metrics
from services.tagger.manual import TagChangeRefused
from services.tagger.queries import BadCursor
from services.tagger.tagging import WriteConflictsPersist
from shared import errors, http

responses = http.error_responses

TRANSLATIONS: dict[type[Exception], http.Translation] = {
    TagChangeRefused: lambda e: errors.InvalidInput("add", str(e), detail=str(e)),
    BadCursor: lambda e: errors.InvalidInput("cursor", str(e), detail=f"cursor: {e}"),
    WriteConflictsPersist: lambda _: errors.Busy(
        "the orders kept changing under this request; retry"
    ),
}


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    http.install_error_handlers(
        app,
        retry_after_s=retry_after_s,
        on_outage=lambda dependency: metrics.DEPENDENCY_ERRORS.labels(dependency).inc(),
        translations=TRANSLATIONS,
    )

"""What ingest's routes receive: the composition root's parts, and the caller's key checked.

The dependencies are coroutines: FastAPI runs a plain ``def`` dependency in its thread pool,
and the hand-off to a thread and back cost more than the rest of a small request."""

from typing import Annotated

from fastapi import Depends, Request

from services.ingest.batch import BatchReader
from services.ingest.bootstrap import Ingest
from services.ingest.intake import Intake
from shared.auth import Scope, require_scope
from shared.ratelimit import rate_limited


def get_ingest(request: Request) -> Ingest:
    ingest: Ingest = request.app.state.ingest
    return ingest


async def intake_of(request: Request) -> Intake:
    return get_ingest(request).intake


async def batches_of(request: Request) -> BatchReader:
    return get_ingest(request).batches


IntakeDep = Annotated[Intake, Depends(intake_of)]
BatchesDep = Annotated[BatchReader, Depends(batches_of)]
may_ingest = Depends(rate_limited(require_scope(Scope.INGEST)))

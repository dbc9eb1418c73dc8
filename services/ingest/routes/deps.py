"""What ingest's routes receive: the composition root's parts, and the caller's key checked."""

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


def get_intake(ingest: Annotated[Ingest, Depends(get_ingest)]) -> Intake:
    return ingest.intake


def get_batches(ingest: Annotated[Ingest, Depends(get_ingest)]) -> BatchReader:
    return ingest.batches


IngestDep = Annotated[Ingest, Depends(get_ingest)]
IntakeDep = Annotated[Intake, Depends(get_intake)]
BatchesDep = Annotated[BatchReader, Depends(get_batches)]
may_ingest = Depends(rate_limited(require_scope(Scope.INGEST)))

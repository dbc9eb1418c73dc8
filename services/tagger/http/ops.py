"""Probes every tagger process serves, whatever its roles: alive, and ready for its roles."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.tagger.http.deps import tagger_of
from services.tagger.roles import readiness

router = APIRouter(tags=["probes"])


class Readiness(BaseModel):
    status: str
    roles: list[str]
    checks: dict[str, str]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency a role needs is down"}},
)
async def readyz(request: Request) -> Any:
    """Each dependency (Kafka, MongoDB, Redis) ``ok`` or ``unreachable``; 503 when one that a
    role of this process needs is down."""
    tagger = tagger_of(request)
    roles = tagger.settings.tagger_roles
    ready, checks = await readiness(tagger, roles)
    body = {"status": "ready" if ready else "unready", "roles": sorted(roles), "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)

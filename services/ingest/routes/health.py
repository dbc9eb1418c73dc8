"""``/healthz`` (the process answers) and ``/readyz`` (each dependency, with its state)."""

import asyncio
from enum import StrEnum

from aiokafka.errors import KafkaError
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.ingest.routes.deps import IngestDep
from shared.redis import REDIS_OUTAGE

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


class DependencyState(StrEnum):
    OK = "ok"
    UNREACHABLE = "unreachable"


class Readiness(BaseModel):
    status: str
    dependencies: dict[str, DependencyState]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency is unreachable"}},
)
async def readyz(ingest: IngestDep) -> JSONResponse:
    kafka, redis = await asyncio.gather(_kafka_state(ingest), _redis_state(ingest))
    states = {"kafka": kafka, "redis": redis}
    ready = all(state is DependencyState.OK for state in states.values())
    body = Readiness(status="ready" if ready else "not ready", dependencies=states)
    return JSONResponse(body.model_dump(mode="json"), 200 if ready else 503)


async def _kafka_state(ingest: IngestDep) -> DependencyState:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await ingest.producer.client.fetch_all_metadata()
    except (KafkaError, TimeoutError, OSError):
        return DependencyState.UNREACHABLE
    return DependencyState.OK


async def _redis_state(ingest: IngestDep) -> DependencyState:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await ingest.redis.ping()
    except REDIS_OUTAGE:  # OSError covers the timeout
        return DependencyState.UNREACHABLE
    return DependencyState.OK

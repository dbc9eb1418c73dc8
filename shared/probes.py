"""Liveness and readiness, the same for every service.

``/healthz`` answers while the process runs (a liveness probe must not depend on anything else),
and 503 once a Kafka producer of the process can no longer send everything: only a new process does
(``shared/kafka_health.py``).
``/readyz`` pings each dependency at once, each within ``CHECK_TIMEOUT_S``, names each ``ok`` or
``unreachable``, and answers 503 with ``Retry-After`` when one that this process's roles need is
down (a role that does not need it keeps the process ready)."""

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.kafka_health import broken_producer

CHECK_TIMEOUT_S = 2.0
RETRY_AFTER_S = 5


class DependencyState(StrEnum):
    OK = "ok"
    UNREACHABLE = "unreachable"


class Readiness(BaseModel):
    status: Literal["ready", "unready"]
    roles: list[str]
    checks: dict[str, DependencyState]


Ping = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """What a service's process checks: a ping per dependency, the ones its roles need."""

    pings: Mapping[str, Ping]
    required: Collection[str]
    roles: Collection[str]


async def _state(ping: Ping) -> DependencyState:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            answer = await ping()
    except Exception:  # any failure to answer is "unreachable" for a probe
        return DependencyState.UNREACHABLE
    return DependencyState.UNREACHABLE if answer is False else DependencyState.OK


async def readiness(check: ReadinessCheck) -> Readiness:
    names = list(check.pings)
    states = await asyncio.gather(*(_state(check.pings[name]) for name in names))
    checks = dict(zip(names, states, strict=True))
    ready = all(checks.get(name) is DependencyState.OK for name in check.required)
    return Readiness(
        status="ready" if ready else "unready", roles=sorted(check.roles), checks=checks
    )


def probes_router(check_of: Callable[[Request], ReadinessCheck]) -> APIRouter:
    """``/healthz`` and ``/readyz`` for a service; ``check_of`` names its process's checks."""
    router = APIRouter(tags=["probes"])

    @router.get(
        "/healthz",
        responses={503: {"description": "a Kafka producer of this process is broken for good"}},
    )
    async def healthz() -> JSONResponse:
        error = broken_producer()
        if error is None:
            return JSONResponse({"status": "ok"})
        reason = f"a Kafka producer is broken: {type(error).__name__}; restart the process"
        return JSONResponse({"status": "failing", "reason": reason}, status_code=503)

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "a dependency a role needs is down"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """Each dependency ``ok`` or ``unreachable``; 503 when one that a role of this process
        needs is down."""
        body = await readiness(check_of(request))
        ready = body.status == "ready"
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=200 if ready else 503,
            headers=None if ready else {"Retry-After": str(RETRY_AFTER_S)},
        )

    return router

"""The notifier's ASGI app: the support page and its API, health and readiness, metrics and the
AsyncAPI document; what runs behind it is built by ``bootstrap``."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from services.notifier.bootstrap import Notifier, bootstrap
from services.notifier.http_errors import install_error_handlers
from services.notifier.page import router as page_router
from services.notifier.security import check_production_settings
from services.notifier.settings import NotifierSettings
from shared.kafka import asyncapi_document
from shared.observability import observe_app

READY_TIMEOUT_S = 2.0


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()
    check_production_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings) as notifier:
            app.state.notifier = notifier
            yield

    docs = settings.expose_docs
    app = FastAPI(
        title="ordertag notifier",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    observe_app(app, "notifier", settings)
    if settings.notifier_expose_metrics:
        app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)
    if settings.notifier_role.runs_web():
        app.include_router(page_router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await readiness(app.state.notifier)
        ready = all(checks.values())
        return JSONResponse(
            {"ready": ready, "checks": {k: "up" if ok else "down" for k, ok in checks.items()}},
            status_code=200 if ready else 503,
            headers=None if ready else {"Retry-After": "5"},
        )

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Any:
        return asyncapi_document(app.state.notifier.broker, "ordertag notifier")

    return app


async def readiness(notifier: Notifier) -> dict[str, bool]:
    """Each dependency this process's role needs, up or down (checked at once, in seconds)."""

    async def answers(check: Any) -> bool:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                result = await check
        except Exception:
            return False
        return result is not False

    checks = {"mongodb": notifier.store.ping(), "redis": notifier.redis.ping()}
    if notifier.settings.notifier_role.runs_consumer():
        checks["kafka"] = notifier.broker.ping(timeout=READY_TIMEOUT_S)
    names = list(checks)
    results = await asyncio.gather(*(answers(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))

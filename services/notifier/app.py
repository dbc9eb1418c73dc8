"""The notifier's ASGI app: the support page and its API, health and readiness, metrics and the
AsyncAPI document; what runs behind it is built by ``bootstrap``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from services.notifier.bootstrap import Notifier, bootstrap
from services.notifier.page import router as page_router
from services.notifier.security import check_production_settings
from services.notifier.settings import NotifierSettings
from shared.api_docs import serve_api_docs
from shared.http import install_error_handlers
from shared.kafka import asyncapi_document
from shared.observability import observe_app
from shared.probes import CHECK_TIMEOUT_S, Ping, ReadinessCheck, probes_router


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
        docs_url=None,  # served by shared.api_docs, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    if docs:
        serve_api_docs(app)
    app.state.settings = settings
    observe_app(app, "notifier", settings)
    if settings.notifier_expose_metrics:
        app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)
    if settings.notifier_role.runs_web():
        app.include_router(page_router)

    app.include_router(probes_router(lambda request: readiness_check(request.app.state.notifier)))

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Any:
        return asyncapi_document(app.state.notifier.broker, "ordertag notifier")

    return app


def readiness_check(notifier: Notifier) -> ReadinessCheck:
    """MongoDB and Redis for every role; Kafka too where this process consumes."""
    pings: dict[str, Ping] = {"mongodb": notifier.store.ping, "redis": notifier.redis.ping}
    if notifier.settings.notifier_role.runs_consumer():
        pings["kafka"] = lambda: notifier.broker.ping(timeout=CHECK_TIMEOUT_S)
    return ReadinessCheck(
        pings=pings, required=set(pings), roles=[notifier.settings.notifier_role.value]
    )

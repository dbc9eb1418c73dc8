"""The tagger's ASGI app: the probes always, the Tag API when this process has the api role,
and the loops of its other roles (consumer, jobs) run for the app's lifetime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from services.console.mount import mount_console
from services.tagger.bootstrap import bootstrap
from services.tagger.http import ops, tag_api
from services.tagger.http.errors import install_error_handlers
from services.tagger.roles import run_roles
from services.tagger.settings import Role, TaggerSettings
from shared.api_docs import serve_api_docs
from shared.http import BodySizeLimit
from shared.observability import observe_app


def create_app(settings: TaggerSettings | None = None) -> FastAPI:
    settings = settings or TaggerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings) as tagger, run_roles(tagger, settings.tagger_roles):
            app.state.tagger = tagger
            yield

    docs = settings.tagger_docs_enabled
    app = FastAPI(
        title="ordertag tagger and Tag API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by shared.api_docs, without a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    if docs:
        serve_api_docs(app)
    app.state.api_keys = settings.api_keys  # read by shared.auth's scope check
    app.add_middleware(BodySizeLimit, max_bytes=settings.tagger_max_body_bytes)
    observe_app(app, "tagger", settings)
    if settings.tagger_metrics_enabled:
        app.mount("/metrics", make_asgi_app())
    install_error_handlers(app, settings.tagger_retry_after_s)
    app.include_router(ops.router)
    if Role.API in settings.tagger_roles:
        app.include_router(tag_api())
        mount_console(app)  # the staff console: pages, sessions, /console/api
    return app

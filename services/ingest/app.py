"""The ingest HTTP API: the composition root's parts served by one router per resource."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from services.ingest.bootstrap import bootstrap
from services.ingest.routes import health, orders
from services.ingest.settings import IngestSettings
from shared.api_docs import serve_api_docs
from shared.auth import ensure_safe_to_start
from shared.events import OrderEvent
from shared.http import BodySizeLimit, install_error_handlers
from shared.kafka import asyncapi_document, make_broker
from shared.observability import observe_app


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    ensure_safe_to_start(settings)
    # Declared for the AsyncAPI document; events go out through the bare producer (hot path).
    asyncapi_broker = make_broker(settings)
    asyncapi_broker.publisher(
        settings.topics.orders,
        title="order events",
        description="Order created / updated / status changed, keyed by customer id",
        schema=OrderEvent,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings) as ingest:
            app.state.ingest = ingest
            app.state.rate_limiter = ingest.rate_limiter
            yield

    app = FastAPI(
        title="ordertag ingest",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by shared.api_docs, without a CDN
        redoc_url=None,
    )
    serve_api_docs(app)
    app.state.api_keys = settings.api_keys
    app.add_middleware(BodySizeLimit, max_bytes=settings.ingest_max_body_bytes)
    observe_app(app, "ingest", settings)
    app.mount("/metrics", make_asgi_app())
    install_error_handlers(app)
    app.include_router(orders.batch_router(settings.ingest_max_batch))
    app.include_router(orders.router)
    app.include_router(health.router)

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Any:
        return asyncapi_document(asyncapi_broker, "ordertag ingest")

    return app

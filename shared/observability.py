"""What every service's HTTP app gets for operators: requests counted by route and status, and
traced when tracing is enabled (``shared.tracing``)."""

from fastapi import FastAPI

from shared.metrics import RequestMetrics
from shared.settings import Settings
from shared.tracing import instrument_app


def observe_app(app: FastAPI, service: str, settings: Settings) -> None:
    """Call once, after the app's other middlewares are added: the last one added is the
    outermost, so the count sees the answers the others give (413, 429)."""
    app.add_middleware(RequestMetrics)
    instrument_app(app, service, settings)

"""Mount the console into an HTTP app that serves the Tag API (the tagger's): its pages, its
API, its static files, and the session the Tag API's scope check falls back to."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.api import router as api_router
from services.console.customers import router as customers_router
from services.console.deps import session_principal
from services.console.oidc_routes import router as oidc_router
from services.console.pages import router as pages_router
from services.console.rule_table import router as rule_table_router
from services.console.settings import ConsoleSettings

STATIC = Path(__file__).parent / "static"


def mount_console(app: FastAPI, settings: ConsoleSettings | None = None) -> None:
    app.state.console_settings = settings or ConsoleSettings()
    app.state.session_principal = session_principal
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    # the console's own endpoints serve its pages (session + CSRF), not the Tag API's clients:
    # they stay out of the Tag API's OpenAPI contract
    app.include_router(api_router, include_in_schema=False)
    app.include_router(pages_router, include_in_schema=False)
    app.include_router(rule_table_router, include_in_schema=False)
    app.include_router(customers_router, include_in_schema=False)
    app.include_router(oidc_router, include_in_schema=False)

"""The API documentation page (Swagger UI) with its script and style served by the service
itself. FastAPI's own pages load them from cdn.jsdelivr.net: blank on a machine without internet,
and unreliable in mainland China. The files come from the ``fastapi-offline`` package (Swagger UI
5, which renders OpenAPI 3.1), installed from PyPI like any dependency; the page is FastAPI's, as
its guide "Custom Docs UI Static Assets (Self-Hosting)" shows. No ReDoc: its bundle still loads
its logo from cdn.redoc.ly."""

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
_ASSETS = files("fastapi_offline") / "static"
# No badge from validator.swagger.io: the page asks nothing of another host.
_SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


def serve_api_docs(app: FastAPI, *, docs_url: str = "/docs") -> None:
    """Serve Swagger UI at ``docs_url`` from this service alone.
    Create the app with ``docs_url=None, redoc_url=None`` (FastAPI's pages use the CDN) and call
    this only when the docs are to be open; without an ``openapi_url`` there is nothing to show."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("the API docs need the OpenAPI document: create the app with openapi_url")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    app.mount(ASSETS_PATH, StaticFiles(directory=str(_ASSETS)), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}" if oauth2_redirect_url else None,
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={**_SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

"""The API docs pages of every service load their scripts and styles from the service itself, so
they work without internet (and where cdn.jsdelivr.net is slow or blocked)."""

import re
from collections.abc import Callable
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.app import create_app as ingest_app
from services.notifier.app import create_app as notifier_app
from services.tagger.app import create_app as tagger_app
from services.tagger.settings import TaggerSettings

SERVICES: dict[str, Callable[[], FastAPI]] = {
    "ingest": ingest_app,
    "tagger": tagger_app,
    "notifier": notifier_app,
}


class _References(HTMLParser):
    """Every address the page makes the browser load: ``src`` and ``href`` of any tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in {"src", "href"} and v is not None]


def references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    # Swagger UI's own fetch of the OpenAPI document, set in the page's inline script
    return parser.urls + re.findall(r"\burl: '([^']+)'", page)


@pytest.mark.parametrize("service", SERVICES)
async def test_docs_pages_load_only_their_own_assets(service: str) -> None:
    transport = httpx.ASGITransport(SERVICES[service]())  # no lifespan: no Kafka, MongoDB, Redis
    async with httpx.AsyncClient(transport=transport, base_url="http://ordertag.test") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert not re.search(r"(https?:)?//", page.text), "the page names another host"
        urls = references(page.text)
        assert {"/openapi.json", "/docs/assets/swagger-ui-bundle.js"} <= set(urls)
        for url in urls:
            assert url.startswith("/"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.content, url


async def test_redoc_is_not_served_as_its_bundle_loads_a_logo_from_its_cdn() -> None:
    transport = httpx.ASGITransport(ingest_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ordertag.test") as client:
        assert (await client.get("/redoc")).status_code == 404


async def test_swagger_ui_is_version_5_which_renders_openapi_3_1() -> None:
    """FastAPI writes OpenAPI 3.1; Swagger UI 4 answers it with "Unable to render this
    definition"."""
    app = tagger_app()
    assert app.openapi()["openapi"].startswith("3.1")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordertag.test") as client:
        bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', bundle.text)


async def test_no_docs_and_no_assets_when_the_docs_are_switched_off() -> None:
    app = tagger_app(TaggerSettings(tagger_docs_enabled=False))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordertag.test") as client:
        answers = [await client.get(p) for p in ("/docs", "/docs/assets/swagger-ui.css")]
    assert [a.status_code for a in answers] == [404, 404]

"""The API docs render in a real headless Chromium with every request answered by the service
itself: the machine may have no internet, and jsDelivr is unreliable in mainland China."""

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.async_api import Request, Route, async_playwright, expect

from services.ingest.app import create_app as ingest_app
from services.tagger.app import create_app as tagger_app
from tests.integration.servers import served_app
from tests.integration.test_support_page import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("make_app", [tagger_app, ingest_app], ids=["tagger", "ingest"])
async def test_api_docs_render_with_no_request_to_another_host(
    make_app: Callable[[], FastAPI],
) -> None:
    elsewhere: list[str] = []
    async with served_app(make_app(), lifespan="off") as url, async_playwright() as playwright:
        origin = urlsplit(url).netloc

        async def same_origin_only(route: Route, request: Request) -> None:
            if urlsplit(request.url).netloc in {origin, ""}:  # "" for data: URLs
                await route.continue_()
            else:
                elsewhere.append(request.url)
                await route.abort()

        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.route("**/*", same_origin_only)
            await page.goto(f"{url}/docs")
            await expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
            await expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
        finally:
            await browser.close()

    assert elsewhere == []

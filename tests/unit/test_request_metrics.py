"""HTTP answers are counted under the route template that served them, in every service."""

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import REGISTRY

from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.notifier.app import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from services.tagger.app import create_app as create_tagger
from services.tagger.settings import TaggerSettings
from shared.http import BodySizeLimit
from shared.metrics import UNMATCHED_ROUTE, RequestMetrics, route_template
from shared.observability import observe_app
from shared.settings import Settings


def count(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("ordertag_http_requests_total", labels) or 0.0


def small_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodySizeLimit, max_bytes=10)

    @app.get("/shops/{shop}/orders/{order_no}")
    async def order(shop: str, order_no: str) -> dict[str, str]:
        if order_no == "missing":
            raise HTTPException(404, "no such order")
        return {"order_no": order_no}

    @app.post("/orders")
    async def post(body: dict[str, int]) -> dict[str, int]:
        return body

    console = FastAPI()

    @console.get("/pages/{page}")
    async def page(page: str) -> dict[str, str]:
        return {"page": page}

    app.mount("/console", console)
    observe_app(app, "test", Settings())
    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=small_app())
    return httpx.AsyncClient(transport=transport, base_url="http://app")


async def test_requests_are_counted_by_route_template_not_path(client: httpx.AsyncClient) -> None:
    route = "/shops/{shop}/orders/{order_no}"
    before_ok, before_missing = count("GET", route, 200), count("GET", route, 404)

    async with client:
        for order_no in ("A1", "A2", "missing"):
            await client.get(f"/shops/s1/orders/{order_no}")

    assert count("GET", route, 200) - before_ok == 2
    assert count("GET", route, 404) - before_missing == 1


async def test_a_mounted_app_route_keeps_its_mount_prefix(client: httpx.AsyncClient) -> None:
    before = count("GET", "/console/pages/{page}", 200)

    async with client:
        answer = await client.get("/console/pages/tags")

    assert answer.status_code == 200
    assert count("GET", "/console/pages/{page}", 200) - before == 1


async def test_unknown_paths_share_one_label(client: httpx.AsyncClient) -> None:
    before = count("GET", UNMATCHED_ROUTE, 404)

    async with client:
        for path in ("/wp-admin", "/.env", "/shops"):
            assert (await client.get(path)).status_code == 404

    assert count("GET", UNMATCHED_ROUTE, 404) - before == 3


async def test_answers_of_other_middlewares_are_counted(client: httpx.AsyncClient) -> None:
    before = count("POST", UNMATCHED_ROUTE, 413)

    async with client:
        answer = await client.post("/orders", content=b'{"a": 1234567890}')

    assert answer.status_code == 413  # refused by BodySizeLimit before any route matched
    assert count("POST", UNMATCHED_ROUTE, 413) - before == 1


def test_route_template_without_a_matched_route_is_unmatched() -> None:
    assert route_template({"type": "http", "root_path": ""}) == UNMATCHED_ROUTE


@pytest.mark.parametrize(
    "create",
    [
        lambda: create_ingest(IngestSettings()),
        lambda: create_tagger(TaggerSettings()),
        lambda: create_notifier(NotifierSettings()),
    ],
    ids=["ingest", "tagger", "notifier"],
)
def test_every_service_counts_its_requests(create: object) -> None:
    app = create()  # type: ignore[operator]

    assert next(m.cls for m in app.user_middleware) is RequestMetrics  # outermost

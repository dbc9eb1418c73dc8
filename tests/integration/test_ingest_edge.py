"""Ingest's edge under hostile input: huge batches, odd media types, unsafe identifiers, floods."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from bench.harness import free_port
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.auth import ApiKey, Scope, hash_key
from shared.ratelimit import RateLimiter
from tests.factories import order_payload
from tests.integration.conftest import api_client

pytestmark = pytest.mark.integration


async def test_a_batch_of_millions_of_tiny_items_is_refused_naming_the_field_and_health_answers(
    ingest_client: httpx.AsyncClient,
) -> None:
    body = b'{"orders":[' + b",".join([b"{}"] * 2_796_000) + b"]}"  # just under 8 MiB

    big = asyncio.create_task(
        ingest_client.post(
            "/orders/batch", content=body, headers={"Content-Type": "application/json"}
        )
    )
    health = await ingest_client.get("/healthz")
    answer = await big

    assert health.status_code == 200
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        {"field": "orders", "problem": "at most 1000 orders per batch, got more; split the batch"}
    ]


async def test_bodies_that_are_not_json_answer_415(
    ingest_client: httpx.AsyncClient, run_id: str
) -> None:
    xml = {"Content-Type": "text/xml"}
    payload = json.dumps(order_payload(f"{run_id}-1"))
    single = await ingest_client.post("/orders", content=payload, headers=xml)
    batch = await ingest_client.post(
        "/orders/batch", content=json.dumps({"orders": [json.loads(payload)]}), headers=xml
    )
    json_suffix = await ingest_client.post(
        "/orders", content=payload, headers={"Content-Type": "application/vnd.shop+json"}
    )

    assert (single.status_code, batch.status_code) == (415, 415)
    assert "application/json" in single.json()["detail"]
    assert json_suffix.status_code == 202


async def test_unsafe_order_numbers_are_refused_naming_the_field(
    ingest_client: httpx.AsyncClient,
) -> None:
    traversal = await ingest_client.post("/orders", json=order_payload("A/../../x"))
    in_path = await ingest_client.post("/orders/bad%20no%00x/status", json={"status": "shipped"})
    customer = order_payload("SO-ok", customer={"id": "C 1/..", "name": "x"})
    bad_customer = await ingest_client.post("/orders", json=customer)

    assert traversal.status_code == 422
    assert traversal.json()["errors"][0]["field"] == "order_no"
    assert in_path.status_code == 422
    assert in_path.json()["errors"][0]["field"] == "order_no"
    assert bad_customer.status_code == 422
    assert bad_customer.json()["errors"][0]["field"] == "customer.id"


async def test_a_key_over_its_rate_answers_429_with_retry_after(
    ingest_settings: IngestSettings, run_id: str
) -> None:
    connector = ApiKey(name=f"shop-{run_id}", sha256=hash_key(run_id), scopes={Scope.INGEST})
    limited = ingest_settings.model_copy(
        update={"ingest_rate_per_minute": 3, "api_keys": [connector]}
    )
    answers: list[httpx.Response] = []
    async with api_client(create_app(limited), key=run_id) as client:
        # fixed one-minute windows: 7 requests cross at most one window's end, so a 429 comes
        while len(answers) < 7 and (not answers or answers[-1].status_code != 429):
            answers.append(
                await client.post("/orders", json=order_payload(f"{run_id}-{len(answers)}"))
            )

    assert [a.status_code for a in answers[:3]] == [202, 202, 202]
    refused = answers[-1]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "limit of 3 requests a minute" in refused.json()["detail"]


async def test_the_limiter_keeps_counting_when_redis_is_unreachable(tmp_path: Path) -> None:
    from redis.asyncio import Redis

    nowhere = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    limiter = RateLimiter(nowhere, per_minute=2, clock=lambda: 120.0)
    try:
        answers = [await limiter.hit("key:shop") for _ in range(3)]
    finally:
        await nowhere.aclose()

    assert answers[:2] == [None, None]
    assert answers[2] == 60

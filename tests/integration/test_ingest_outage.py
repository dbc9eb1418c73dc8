"""Kafka stopped under a running ingest: 503 with Retry-After, never a 202 for a lost event."""

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest

from services.ingest.settings import IngestSettings
from shared.events import order_event_adapter
from tests.conftest import eventually
from tests.factories import order_payload
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration
STACK = Path(__file__).parents[2] / "deploy" / "local" / "stack.sh"


async def stack(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(str(STACK), *args, stdout=subprocess.DEVNULL)
    assert await process.wait() == 0, f"stack.sh {' '.join(args)} failed"


async def test_broker_stopped_mid_test_gives_503_and_no_false_202(
    ingest_client: httpx.AsyncClient, ingest_settings: IngestSettings, run_id: str
) -> None:
    before = await ingest_client.post("/orders", json=order_payload(f"{run_id}-before"))
    assert before.status_code == 202

    await stack("stop", "kafka")
    try:
        single = await ingest_client.post("/orders", json=order_payload(f"{run_id}-during"))
        batch = await ingest_client.post(
            "/orders/batch", json={"orders": [order_payload(f"{run_id}-b{i}") for i in range(3)]}
        )
        ready = await ingest_client.get("/readyz")
    finally:
        await stack("start", "kafka")

    assert single.status_code == 503
    assert single.headers["Retry-After"] == "5"
    assert batch.status_code == 503
    assert [item["outcome"] for item in batch.json()["items"]] == ["unavailable"] * 3
    assert ready.status_code == 503

    # the claim was released: once Kafka is back, the client's retry of the same order succeeds
    async def retry_accepted() -> bool:
        answer = await ingest_client.post("/orders", json=order_payload(f"{run_id}-during"))
        return answer.status_code == 202

    await eventually(retry_accepted, within=30, interval=0.5)
    records = await read_topic(ingest_settings, ingest_settings.topics.orders, 2, extra_wait=2)
    accepted = {order_event_adapter.validate_json(r.value).order_no for r in records}
    assert {f"{run_id}-before", f"{run_id}-during"} <= accepted

"""One order's trace spans the three services: a real Jaeger (all-in-one, OTLP in, in-memory
storage) receives the spans of ingest, tagger and notifier processes run with tracing on, and
its query API returns them as one trace.

Runs when the jaeger binary is cached (``deploy/observability/tools.sh jaeger`` builds it from
the Go module proxy, once per machine: ~5 min idle, much longer on a loaded machine)."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import free_port
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import order_payload

pytestmark = pytest.mark.integration

OBSERVABILITY = Path(__file__).parents[2] / "deploy" / "observability"
SERVICES = ("ordertag-ingest", "ordertag-tagger", "ordertag-notifier")


def jaeger_binary() -> Path:
    tools = OBSERVABILITY / "tools.sh"
    cached = subprocess.run(  # noqa: S603
        [str(tools), "jaeger"],
        capture_output=True,
        text=True,
        env={**os.environ, "ORDERTAG_TOOLS_CACHED_ONLY": "1"},
        check=False,
    )
    if cached.returncode != 0:
        pytest.skip(f"jaeger is not built: run {tools} jaeger (once per machine, ~5 min)")
    return Path(cached.stdout.strip())


@pytest.fixture
async def jaeger(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """Jaeger on ports of its own: (OTLP/HTTP port, query API port)."""
    binary = jaeger_binary()
    otlp, query = free_port(), free_port()
    env = {
        **os.environ,
        "JAEGER_OTLP_PORT": str(otlp),
        "JAEGER_QUERY_PORT": str(query),
        "JAEGER_QUERY_GRPC_PORT": str(free_port()),
        "JAEGER_HEALTH_PORT": str(free_port()),
    }
    with (tmp_path / "jaeger.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(binary),
            "--config",
            str(OBSERVABILITY / "jaeger.yaml"),
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:

        async def answers() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"http://127.0.0.1:{query}/api/services")).is_success
            except httpx.HTTPError:
                return False

        await eventually(answers, within=60, interval=0.2)
        yield otlp, query
    finally:
        process.terminate()
        await process.wait()


async def start(module: str, settings: Settings, env: dict[str, str], log: Path) -> Any:
    topics = settings.topics
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", module),
            *(("--role", "consumer") if module != "services.ingest" else ()),
            env={
                **os.environ,
                "ORDERTAG_MONGO_DATABASE": settings.mongo_database,
                "ORDERTAG_TOPICS__ORDERS": topics.orders,
                "ORDERTAG_TOPICS__TAGGED": topics.tagged,
                "ORDERTAG_TOPICS__DEAD_LETTER": topics.dead_letter,
                "ORDERTAG_TOPICS__ALERTS": topics.alerts,
                **env,
            },
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


async def trace_of(query_port: int, order_no: str) -> dict[str, Any] | None:
    """The notifier's trace tagged with ``order_no``, once Jaeger holds one."""
    tags = json.dumps({"ordertag.order_no": order_no})
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(
            f"http://127.0.0.1:{query_port}/api/traces",
            params={"service": "ordertag-notifier", "tags": tags, "lookback": "1h"},
        )
    if not answer.is_success:
        return None
    traces: list[dict[str, Any]] = answer.json().get("data") or []
    for found in traces:
        services = {process["serviceName"] for process in found["processes"].values()}
        if services >= set(SERVICES):
            return found
    return None


async def test_one_order_is_one_trace_across_ingest_tagger_and_notifier(
    jaeger: tuple[int, int], settings: Settings, run_id: str, tmp_path: Path
) -> None:
    otlp, query = jaeger
    await ensure_topics(settings)
    tracing = {
        "ORDERTAG_TRACING_ENABLED": "true",
        "ORDERTAG_TRACING_ENDPOINT": f"http://127.0.0.1:{otlp}",
    }
    ingest_port = free_port()
    processes = [
        await start(
            "services.ingest",
            settings,
            {**tracing, "ORDERTAG_INGEST_PORT": str(ingest_port)},
            tmp_path / "ingest.log",
        ),
        await start(
            "services.tagger",
            settings,
            {
                **tracing,
                "ORDERTAG_TAGGER_PORT": str(free_port()),
                "ORDERTAG_TAGGER_GROUP_ID": f"tagger-{run_id}",
            },
            tmp_path / "tagger.log",
        ),
        await start(
            "services.notifier",
            settings,
            {
                **tracing,
                "ORDERTAG_NOTIFIER_PORT": str(free_port()),
                "ORDERTAG_NOTIFIER_GROUP_ID": f"notifier-{run_id}",
            },
            tmp_path / "notifier.log",
        ),
    ]
    order_no = f"{run_id}-traced"
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ingest_port}",
            headers={API_KEY_HEADER: LOCAL_DEV_KEY},
            timeout=10,
        ) as client:

            async def accepted() -> bool:
                try:
                    answer = await client.post("/orders", json=order_payload(order_no))
                except httpx.HTTPError:  # ingest still starting
                    return False
                return answer.status_code in (200, 202)  # 200: a repeat, already accepted

            await eventually(accepted, within=120, interval=0.5)

        found = await eventually(lambda: trace_of(query, order_no), within=180, interval=1)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()

    by_process = {key: p["serviceName"] for key, p in found["processes"].items()}
    spans = {(by_process[s["processID"]], s["operationName"]) for s in found["spans"]}
    topics = settings.topics
    assert ("ordertag-ingest", "POST /orders") in spans  # the HTTP request started the trace
    assert ("ordertag-ingest", f"send {topics.orders}") in spans
    assert ("ordertag-tagger", f"process {topics.orders}") in spans
    assert ("ordertag-notifier", f"process {topics.tagged}") in spans
    assert len({s["traceID"] for s in found["spans"]}) == 1

"""One order's trace spans the three services and the alert's delivery: a real Jaeger
(all-in-one, OTLP in, in-memory storage) receives the spans of ingest, tagger and notifier
processes run with tracing on, and its query API returns them as one trace.

Runs when the jaeger binary is cached (``deploy/observability/tools.sh jaeger`` builds it from
the Go module proxy, once per machine: ~5 min idle, much longer on a loaded machine)."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.harness import free_port
from shared.auth import API_KEY_HEADER, LOCAL_DEV_KEY
from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.conftest import eventually
from tests.factories import order_payload
from tests.integration.receivers import http_receiver

pytestmark = pytest.mark.integration

OBSERVABILITY = Path(__file__).parents[2] / "deploy" / "observability"


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
            if process.returncode is not None:
                log = (tmp_path / "jaeger.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"jaeger exited with {process.returncode}:\n{log}")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"http://127.0.0.1:{query}/api/services")).is_success
            except httpx.HTTPError:
                return False

        await eventually(answers, within=60, interval=0.2)
        yield otlp, query
    finally:
        if process.returncode is None:
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


Span = tuple[str, str]  # (service, operation)


async def trace_of(query_port: int, order_no: str, spans: set[Span]) -> dict[str, Any] | None:
    """The notifier's trace tagged with ``order_no``, once Jaeger holds one with these spans."""
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
        if spans <= spans_of(found):
            return found
    return None


def spans_of(found: dict[str, Any]) -> set[Span]:
    by_process = {key: p["serviceName"] for key, p in found["processes"].items()}
    return {(by_process[s["processID"]], s["operationName"]) for s in found["spans"]}


def routing(path: Path, hook_url: str, *, quiet_now: bool) -> Path:
    """Urgent orders raise a warning for the support team, sent to one webhook; with
    ``quiet_now``, the webhook's quiet hours are now, so the delivery waits (stays pending)."""
    now = datetime.now(UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "UTC",
    }
    hook = {"id": "hook", "type": "webhook", "url": hook_url, "unsigned": True}
    path.write_text(
        json.dumps(
            {
                "channels": [{**hook, "quiet_hours": quiet} if quiet_now else hook],
                "routes": [
                    {
                        "id": "urgent",
                        "kind": "urgent",
                        "severity": "warning",
                        "team": "support",
                        "when_tags_any": ["urgent"],
                        "channels": ["hook"],
                    }
                ],
                "escalation": {"after_minutes": 60, "kinds": ["urgent"], "channels": []},
            }
        )
    )
    return path


async def pending_on_hook(mongo_db: AsyncDatabase[dict[str, Any]], order_no: str) -> bool:
    alert = await mongo_db["alerts"].find_one({"order_no": order_no})
    return alert is not None and [d["status"] for d in alert["deliveries"]] == ["pending"]


async def test_one_order_is_one_trace_from_ingest_to_the_alert_delivery(
    jaeger: tuple[int, int],
    settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    run_id: str,
    tmp_path: Path,
) -> None:
    """The delivery is sent by a notifier restarted after the alert was stored (quiet hours
    held it back), so it joins the trace from the context stored with the alert."""
    otlp, query = jaeger
    await ensure_topics(settings)
    tracing = {
        "ORDERTAG_TRACING_ENABLED": "true",
        "ORDERTAG_TRACING_ENDPOINT": f"http://127.0.0.1:{otlp}",
    }
    topics = settings.topics
    ingest_port = free_port()
    notifier = {
        **tracing,
        "ORDERTAG_NOTIFIER_PORT": str(free_port()),
        "ORDERTAG_NOTIFIER_GROUP_ID": f"notifier-{run_id}",
    }
    order_no = f"{run_id}-traced"
    async with http_receiver() as receiver:
        held = routing(tmp_path / "held.yaml", f"{receiver.url}/hook", quiet_now=True)
        open_ = routing(tmp_path / "open.yaml", f"{receiver.url}/hook", quiet_now=False)
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
        ]
        first = await start(
            "services.notifier",
            settings,
            {**notifier, "ORDERTAG_NOTIFIER_ROUTING_FILE": str(held)},
            tmp_path / "notifier-1.log",
        )
        processes.append(first)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{ingest_port}",
                headers={API_KEY_HEADER: LOCAL_DEV_KEY},
                timeout=10,
            ) as client:
                urgent = order_payload(
                    order_no, shipping={"method": "express", "province": "浙江", "city": "杭州"}
                )

                async def accepted() -> bool:
                    try:
                        answer = await client.post("/orders", json=urgent)
                    except httpx.HTTPError:  # ingest still starting
                        return False
                    return answer.status_code in (200, 202)  # 200: a repeat, already accepted

                await eventually(accepted, within=120, interval=0.5)

            across = {
                ("ordertag-ingest", "POST /orders"),  # the HTTP request started the trace
                ("ordertag-ingest", f"send {topics.orders}"),
                ("ordertag-tagger", f"process {topics.orders}"),
                ("ordertag-notifier", f"process {topics.tagged}"),
            }
            await eventually(lambda: trace_of(query, order_no, across), within=180, interval=1)
            await eventually(lambda: pending_on_hook(mongo_db, order_no), within=60)
            first.terminate()  # the held delivery stays pending in MongoDB
            await first.wait()
            assert receiver.at("/hook") == []
            processes.append(
                await start(
                    "services.notifier",
                    settings,
                    {**notifier, "ORDERTAG_NOTIFIER_ROUTING_FILE": str(open_)},
                    tmp_path / "notifier-2.log",
                )
            )
            delivered = {*across, ("ordertag-notifier", "deliver webhook")}
            found = await eventually(
                lambda: trace_of(query, order_no, delivered), within=180, interval=1
            )
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                await process.wait()

    assert len(receiver.at("/hook")) == 1
    assert len({s["traceID"] for s in found["spans"]}) == 1
    by_id = {s["spanID"]: s for s in found["spans"]}
    [sending] = [s for s in found["spans"] if s["operationName"] == "deliver webhook"]
    [parent] = [r["spanID"] for r in sending["references"] if r["refType"] == "CHILD_OF"]
    assert by_id[parent]["operationName"] == f"process {topics.tagged}"

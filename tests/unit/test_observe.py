"""`make observe` starts Prometheus with deploy/observability's config: it scrapes the services'
ports it is given and loads the alert rules. Checked against a real Prometheus scraping a real
prometheus_client endpoint that serves ingest's metrics.

Runs when the prometheus binary is cached (``deploy/observability/tools.sh prometheus`` builds it,
as ``make observe`` does on first use).
"""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import start_http_server

import services.ingest.metrics as ingest_metrics
from bench.harness import free_port

OBSERVABILITY = Path(__file__).parents[2] / "deploy" / "observability"

pytestmark = pytest.mark.promtool


@pytest.fixture
def prometheus_binary() -> Path:
    tools = OBSERVABILITY / "tools.sh"
    cached = subprocess.run(  # noqa: S603
        [str(tools), "prometheus"],
        capture_output=True,
        text=True,
        env={**os.environ, "ORDERTAG_TOOLS_CACHED_ONLY": "1"},
        check=False,
    )
    if cached.returncode != 0:
        pytest.skip(f"prometheus is not built: run {tools} prometheus (~5 min)")
    return Path(cached.stdout.strip())


@pytest.fixture
def observe(prometheus_binary: Path, tmp_path: Path) -> Iterator[tuple[str, int]]:
    ingest_port = free_port()
    server, thread = start_http_server(ingest_port, addr="127.0.0.1")
    ingest_metrics.ACCEPTED.labels("created").inc(3)
    prometheus_port = free_port()
    env = {
        **os.environ,
        "ORDERTAG_STACK_DIR": str(tmp_path),
        "ORDERTAG_PROMETHEUS_PORT": str(prometheus_port),
        "ORDERTAG_INGEST_PORT": str(ingest_port),
        "ORDERTAG_TAGGER_PORT": str(free_port()),  # nothing there: the target is down
        "ORDERTAG_NOTIFIER_PORT": str(free_port()),
    }
    with (tmp_path / "prometheus.log").open("w") as log:
        process = subprocess.Popen(  # noqa: S603
            [str(OBSERVABILITY / "observe.sh")], env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            yield f"http://127.0.0.1:{prometheus_port}", ingest_port
        finally:
            process.terminate()
            process.wait(timeout=30)
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def eventually_json(url: str, condition: Any, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=5)
        except httpx.HTTPError as error:
            last = repr(error)
        else:
            # a starting Prometheus answers 503 "Service Unavailable" until its TSDB is ready
            last = answer.json() if answer.is_success else f"{answer.status_code} {answer.text}"
            if answer.is_success and condition(last):
                return last
        time.sleep(0.5)
    raise AssertionError(f"{url} never met the condition; last answer: {last}")


def test_observe_scrapes_the_services_and_loads_the_alert_rules(observe: tuple[str, int]) -> None:
    base, ingest_port = observe

    targets = eventually_json(
        f"{base}/api/v1/targets",
        lambda body: any(
            t["labels"]["job"] == "ingest" and t["health"] == "up"
            for t in body["data"]["activeTargets"]
        ),
    )
    accepted = eventually_json(
        f"{base}/api/v1/query?query=ordertag_ingest_accepted_total",
        lambda body: body["data"]["result"],
    )
    rules = httpx.get(f"{base}/api/v1/rules", timeout=5).json()

    jobs = {t["labels"]["job"]: t for t in targets["data"]["activeTargets"]}
    assert set(jobs) == {"ingest", "tagger", "notifier"}
    assert jobs["ingest"]["scrapeUrl"] == f"http://127.0.0.1:{ingest_port}/metrics"
    [sample] = [r for r in accepted["data"]["result"] if r["metric"]["kind"] == "created"]
    assert sample["metric"]["job"] == "ingest"
    assert float(sample["value"][1]) >= 3
    groups = {g["name"] for g in rules["data"]["groups"]}
    assert {"ordertag-pipeline", "ordertag-delivery", "ordertag-http"} <= groups

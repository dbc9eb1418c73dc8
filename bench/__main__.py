"""``make bench``: every benchmark in one run on the local stack; writes docs/benchmarks.md,
docs/benchmarks.json and docs/benchmarks.png. Ratios sit next to absolute figures: absolute
numbers drift on shared machines, ratios measured in the same run much less."""

import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import (
    alert_noise,
    console_bench,
    document_bytes,
    e2e_bench,
    ingest_bench,
    ingest_cpu,
    rules_diff_bench,
    scaling_bench,
    tagger_bench,
    tagger_cpu,
)
from bench.harness import delete_benchmark_topics
from bench.report import write_chart, write_markdown
from shared.gc_tuning import tune_gc

DOCS = Path(__file__).parents[1] / "docs"
LIBS = Path(__file__).parents[1] / ".local" / "libs"


def machine() -> dict[str, Any]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    redis = subprocess.run(  # noqa: S603  (a fixed command, no input)
        [server, "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    jars = sorted(p.name for p in LIBS.glob("*.jar")) if LIBS.exists() else []
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "kafka": next(
            (
                j.removeprefix("kafka_2.13-").removesuffix(".jar")
                for j in jars
                if j.startswith("kafka_2.13-")
            ),
            "?",
        ),
        "mongo_wire_server": next(
            (j.removesuffix(".jar") for j in jars if j.startswith("mongo-java-server-core")), "?"
        ),
        "redis": next((w.removeprefix("v=") for w in redis if w.startswith("v=")), "?"),
        "faststream": version("faststream"),
        "aiokafka": version("aiokafka"),
        "pymongo": version("pymongo"),
        "redis_py": version("redis"),
    }


async def main(scale: float) -> dict[str, Any]:
    try:
        return await _run_all(scale)
    finally:
        await delete_benchmark_topics()


async def _run_all(scale: float) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "scale": scale}
    print("ingest …", flush=True)
    results["ingest"] = await ingest_bench.run(scale)
    print("ingest CPU per order in process …", flush=True)
    results["ingest_cpu"] = await ingest_cpu.run(orders=max(2_000, int(15_000 * scale)))
    print("tagger …", flush=True)
    results["tagger"] = await tagger_bench.run(scale)
    print("bytes stored per order …", flush=True)
    results["document_bytes"] = await document_bytes.run(max(1_000, int(10_000 * scale)))
    print("tagger CPU per order vs the floor …", flush=True)
    results["tagger_cpu"] = await tagger_cpu.run(scale)
    print("end-to-end latency …", flush=True)
    results["end_to_end"] = await e2e_bench.run(
        (50, 200, 1000), 10 * scale, {1000: e2e_bench.SHOP_URGENT_SHARE}
    )
    print("rules and customers …", flush=True)
    results["rules_scaling"] = scaling_bench.rules_cost()
    sizes = (1_000, 100_000, 1_000_000) if scale >= 1 else (1_000, 100_000)
    results["customers_scaling"] = await scaling_bench.customers_cost(sizes)
    print("rule diff against stored orders …", flush=True)
    results["rules_diff"] = await rules_diff_bench.run(max(1_000, int(10_000 * scale)))
    print("console order list …", flush=True)
    results["console"] = await console_bench.run()
    print("alert noise …", flush=True)
    live = int(10_000 * min(scale, 2))
    results["alert_noise"] = alert_noise.measure(orders=live, history=live, customers=live // 2)
    return results


def console_markdown(figures: dict[str, Any]) -> str:
    """The console's section of benchmarks.md: first page of tag-filtered lists, per query."""
    queries = figures["queries"].items()
    cells = [(name.replace("|", " or "), q) for name, q in queries]  # a | would split a cell
    rows = [f"| `{name}` | {q['p50_ms']:,} | {q['p95_ms']:,} |" for name, q in cells]
    verdict = "meets" if figures["meets_target"] else "misses"
    return "\n".join(
        [
            "",
            "## Console order list",
            "",
            f"First page (50 rows, newest first) of tag-filtered lists over {figures['orders']:,}"
            f" stored orders, {figures['rounds']} rounds each, through `GET /orders` with a"
            " console session (`bench/console_bench.py`)."
            f" Worst p95 {figures['worst_p95_ms']:,} ms: {verdict} the"
            f" {figures['target_p95_ms']:,.0f} ms target (issue #15).",
            "",
            "| query | p50 ms | p95 ms |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    scale = float(os.environ.get("ORDERTAG_BENCH_SCALE", "1"))
    tune_gc()  # the in-process ceilings and baselines run under the services' GC settings
    results = asyncio.run(main(scale))
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, DOCS / "benchmarks.md")
    with (DOCS / "benchmarks.md").open("a", encoding="utf-8") as markdown:
        markdown.write(ingest_cpu.markdown(results["ingest_cpu"]))
        markdown.write(document_bytes.markdown(results["document_bytes"]))
        markdown.write(tagger_cpu.markdown(results["tagger_cpu"]))
        markdown.write(console_markdown(results["console"]))
        markdown.write(rules_diff_bench.markdown(results["rules_diff"]))
        markdown.write(alert_noise.markdown(results["alert_noise"]))
    write_chart(results, DOCS / "benchmarks.png")
    print((DOCS / "benchmarks.md").read_text())

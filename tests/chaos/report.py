"""docs/reliability.md and docs/reliability.json from a run's outcome."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.chaos.run import Outcome, machine


def figures(outcome: Outcome) -> dict[str, Any]:
    ledger = outcome.ledger
    by_name = {c.name: c for c in outcome.checks}
    orders = next(c for c in outcome.checks if c.name.startswith("every order ingest accepted"))
    duplicated = sum(
        c.figures.get(key, 0)
        for c in by_name.values()
        for key in (
            "duplicated",
            "stored_twice",
            "on_topic_twice",
            "duplicate_deliveries",
            "counted_too_many",
        )
    )
    options = outcome.options
    return {
        "ok": outcome.ok,
        "run": {
            "id": outcome.env.run_id,
            "started_at": outcome.started_at,
            "machine": machine(),
            "plan": options.plan,
            "rate_orders_per_s": options.rate,
            "traffic_s": options.duration,
            "seed": options.seed,
            "customers": options.customers,
            "history_orders": options.history,
            "receiver_failure_rate": options.receiver_failure_rate,
            "traffic_and_resend_s": round(outcome.traffic_seconds, 1),
            "drain_s": round(outcome.drain_seconds, 1),
            "drained": outcome.drained,
        },
        "orders": {
            "sent": len(ledger.orders_sent),
            "accepted": len(ledger.accepted_orders),
            "refused_503": ledger.refused_unavailable,
            "refused_429": ledger.refused_rate_limited,
            "in_flight_409": ledger.in_flight_answers,
            "retries": ledger.retries,
            "dropped_connections": len(ledger.transport_errors),
            "status_changes_accepted": sum(
                k == "status" for k, _ in ledger.accepted_events.values()
            ),
            "updates_accepted": sum(k == "update" for k, _ in ledger.accepted_events.values()),
            "invalid_sent": ledger.invalid_sent,
            "invalid_refused_4xx": ledger.invalid_refused,
            "lost": orders.figures["lost"],
            "duplicated_effects": duplicated,
        },
        "faults_by_kind": dict(Counter(f.kind for f in outcome.faults)),
        "faults": [f.as_json() for f in outcome.faults],
        "totals": outcome.totals,
        "checks": [
            {"name": c.name, "ok": c.ok, "figures": c.figures, "examples": c.examples}
            for c in outcome.checks
        ],
    }


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


INTRO = """\
# Reliability: the chaos run

Written by `make chaos` (`python -m tests.chaos`); raw figures in `reliability.json`. A realistic
order stream (`ordertag simulate`'s: status changes, cancellations, returns, updates) flows
through ingest over HTTP while Kafka, the MongoDB-wire server, Redis and the three services are
killed with SIGKILL one after another and restarted a few seconds later. Then an independent
check reads Kafka, MongoDB and Redis directly and counts deliveries at the receiving webhooks.
"""

ORDERS_NOTE = """\
*Lost*: orders ingest accepted that are not in MongoDB. *Duplicated effects*: history entries,
alerts, alert records on the topic and webhook deliveries found more than once, plus customers
counted with too many orders."""

FAULTS_NOTE = """\
Seconds from the restart (the process back up) until ingest accepted a new order, until an order
accepted after the restart was stored with its tags, and until the next alert reached a webhook."""


def markdown(data: dict[str, Any]) -> str:
    run, orders = data["run"], data["orders"]
    verdict = "PASS" if data["ok"] else "FAIL"
    lines = [
        INTRO,
        f"**Verdict: {verdict}**. Run `{run['id']}` of {run['started_at']}, plan `{run['plan']}`: "
        f"{run['rate_orders_per_s']:.0f} new orders/s for at least {run['traffic_s']:.0f} s, "
        f"after {run['history_orders']} past orders of {run['customers']} customers "
        f"(seed {run['seed']}); drained: {'yes' if run['drained'] else 'NO'} "
        f"in {run['drain_s']} s. {run['machine']}.",
        "",
        "## Orders",
        "",
        "| sent | accepted | refused 503 | refused 429 | retries | dropped connections "
        "| lost | duplicated effects |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| "
        + " | ".join(
            str(orders[k]) for k in ("sent", "accepted", "refused_503", "refused_429", "retries")
        )
        + f" | {orders['dropped_connections']} | **{orders['lost']}** "
        f"| **{orders['duplicated_effects']}** |",
        "",
        f"Also accepted: {orders['status_changes_accepted']} status changes and "
        f"{orders['updates_accepted']} updates. Deliberately invalid orders: "
        f"{orders['invalid_sent']} sent, {orders['invalid_refused_4xx']} refused with 4xx (the "
        "others met ingest while it was down).",
        "",
        ORDERS_NOTE,
        "",
        "## Faults and recovery",
        "",
        FAULTS_NOTE,
        "",
        "| at (s) | killed | down (s) | restart (s) | accepted after | tagged after "
        "| alerted after | notes |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for fault in data["faults"]:
        notes = "; ".join(filter(None, [fault["error"], *fault["notes"]]))
        timings = [fault[k] for k in ("accepted_after_s", "tagged_after_s", "alerted_after_s")]
        lines.append(
            f"| {fault['killed_at_s']:.1f} | {fault['kind']} | {fault['down_s']:.1f} "
            f"| {fault['restart_s']:.1f} | "
            + " | ".join(_seconds(t) for t in timings)
            + f" | {notes} |"
        )
    kinds = ", ".join(f"{kind} ×{n}" for kind, n in data["faults_by_kind"].items())
    lines += ["", f"Faults by kind: {kinds}.", "", "## Checks", ""]
    for check in data["checks"]:
        mark = "PASS" if check["ok"] else "FAIL"
        lines.append(f"- **{mark}** {check['name']}: {_inline(check['figures'])}")
        lines.extend(f"  - `{example}`" for example in check["examples"])
    lines += ["", f"Totals: {_inline(data['totals'])}", ""]
    return "\n".join(lines)


def _inline(figures: dict[str, Any]) -> str:
    return ", ".join(
        f"{k.replace('_', ' ')} {json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v}"
        for k, v in figures.items()
    )


RECORD_HEADING = "## The last full run with an accounting"


def write(outcome: Outcome, directory: Path) -> dict[str, Any]:
    data = figures(outcome)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "reliability.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    page = directory / "reliability.md"
    kept = page.read_text(encoding="utf-8") if page.exists() else ""
    page.write_text(with_history(markdown(data), kept), encoding="utf-8")
    return data


def with_history(report: str, previous: str) -> str:
    """The new report under ``RECORD_HEADING``, after what the team wrote by hand between the
    introduction and that heading on the previous page (the status, every round run): a new
    run replaces the record of the last one, never the history."""
    history = ""
    if previous.startswith(INTRO) and RECORD_HEADING in previous:
        history = previous[len(INTRO) : previous.index(RECORD_HEADING)].strip("\n")
    if not history:
        return report
    body = report[len(INTRO) :].lstrip("\n")
    return f"{INTRO}\n{history}\n\n{RECORD_HEADING}\n\n{body}"

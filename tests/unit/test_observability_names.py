"""Every metric the alert rules and the Grafana dashboard use is one the services export, or one
proposed to the services' owners and listed in PROPOSED (so the list shrinks as they land)."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "ordertag.json"
ALERTS = OBSERVABILITY / "alerts.yml"

# Not exported yet; the names the rules and the dashboard expect (docs/operations.md, "Metrics").
# Empty since the last four landed (notifier lag, HTTP requests, end-to-end latency, DLQ depth).
PROPOSED: set[str] = set()
# Series Prometheus makes itself.
BUILTIN = {"up", "ALERTS"}
METRIC_DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Enum|Info)\(\s*[\"']([a-zA-Z_:][\w:]*)[\"']"
)
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def exported() -> dict[str, str]:
    """Metric names defined with prometheus_client anywhere in services/ and shared/, by type."""
    names = {}
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        text = path.read_text()
        if "prometheus_client" not in text:
            continue
        for kind, name in METRIC_DEFINITION.findall(text):
            if kind == "Counter" and not name.endswith("_total"):
                name += "_total"  # prometheus_client exposes counters with the suffix
            names[name] = kind
    return names


def used_in(expression: str) -> set[str]:
    """Metric names in a PromQL expression (recording-rule names hold a colon and are skipped)."""
    without_strings = re.sub(r'"[^"]*"', '""', expression)
    tokens = set(
        re.findall(r"(?<![\w:.$])([a-zA-Z_][\w]*)(?=\s*[{\[)]|\s*$|\s+[^\w(])", without_strings)
    )
    return {t for t in tokens if t.startswith("ordertag_") or t in BUILTIN}


def base_name(series: str, kinds: dict[str, str]) -> str:
    stripped = HISTOGRAM_SERIES.sub("", series)
    if stripped != series and (
        kinds.get(stripped) in {"Histogram", "Summary"} or stripped in PROPOSED
    ):
        return stripped
    return series


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def names_used(expressions: list[str]) -> set[str]:
    kinds = exported()
    return {base_name(n, kinds) for e in expressions for n in used_in(e)} - BUILTIN


def test_the_name_finder_sees_what_an_expression_uses() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (le) (rate(ordertag_ingest_publish_seconds_bucket[5m])))"
        ' > 1 and on () sum(ordertag_tagger_lag{partition="ordertag_x"}) / up'
    )

    assert used_in(expression) == {
        "ordertag_ingest_publish_seconds_bucket",
        "ordertag_tagger_lag",
        "up",
    }
    assert (
        base_name("ordertag_ingest_publish_seconds_bucket", exported())
        == "ordertag_ingest_publish_seconds"
    )


def test_alert_rules_use_only_exported_or_proposed_metrics() -> None:
    unknown = names_used(rule_expressions()) - set(exported()) - PROPOSED

    assert not unknown, f"not exported by any service: {sorted(unknown)}"


def test_dashboard_uses_only_exported_or_proposed_metrics() -> None:
    unknown = names_used(dashboard_expressions()) - set(exported()) - PROPOSED

    assert not unknown, f"not exported by any service: {sorted(unknown)}"


def test_proposed_metrics_are_still_missing_and_still_used() -> None:
    landed = PROPOSED & set(exported())
    unused = PROPOSED - names_used(rule_expressions() + dashboard_expressions())

    assert not landed, f"now exported: remove {sorted(landed)} from PROPOSED"
    assert not unused, f"used nowhere: remove {sorted(unused)} from PROPOSED"


def test_dashboard_shows_what_operators_watch() -> None:
    used = names_used(dashboard_expressions())

    assert {
        "ordertag_tagger_lag",  # lag per partition and group
        "ordertag_notifier_lag",
        "ordertag_ingest_accepted_total",  # throughput
        "ordertag_end_to_end_seconds",  # end-to-end latency
        "ordertag_dead_letter_records",  # DLQ depth
        "ordertag_notifier_alerts_raised_total",  # alerts by severity
        "ordertag_notifier_deliveries_total",  # deliveries by channel and outcome
        "ordertag_http_requests_total",  # errors
    } <= used

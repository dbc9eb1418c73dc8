#!/usr/bin/env bash
# `make observe`: Prometheus scraping the local demo's services (start `make demo` beside it) and
# evaluating deploy/observability/alerts.yml. Ctrl-C stops it.
#   ORDERTAG_PROMETHEUS_PORT (9090), ORDERTAG_{INGEST,TAGGER,NOTIFIER}_PORT (8001..8003),
#   ORDERTAG_STACK_DIR (.local) for its data, ORDERTAG_OBSERVE_SECONDS=N to stop after N seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
stack_dir="${ORDERTAG_STACK_DIR:-$root/.local}"
port="${ORDERTAG_PROMETHEUS_PORT:-9090}"
work="$stack_dir/observe"

prometheus="$("$here/tools.sh" prometheus)"
mkdir -p "$work/data"
cp "$here/prometheus.yml" "$here/alerts.yml" "$work/"
cat >"$work/targets.json" <<JSON
[
  {"targets": ["127.0.0.1:${ORDERTAG_INGEST_PORT:-8001}"], "labels": {"service": "ingest"}},
  {"targets": ["127.0.0.1:${ORDERTAG_TAGGER_PORT:-8002}"], "labels": {"service": "tagger"}},
  {"targets": ["127.0.0.1:${ORDERTAG_NOTIFIER_PORT:-8003}"], "labels": {"service": "notifier"}}
]
JSON

echo "[observe] Prometheus on http://127.0.0.1:$port (targets: /api/v1/targets," \
     "alerts: /api/v1/alerts, query: /api/v1/query?query=...); data in $work/data"
args=(--config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data"
      --web.listen-address="127.0.0.1:$port" --storage.tsdb.retention.time=2d)
if [[ -n "${ORDERTAG_OBSERVE_SECONDS:-}" ]]; then
    timeout --signal=TERM "$ORDERTAG_OBSERVE_SECONDS" "$prometheus" "${args[@]}" || [[ $? == 124 ]]
    exit
fi
exec "$prometheus" "${args[@]}"

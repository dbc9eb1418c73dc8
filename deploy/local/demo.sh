#!/usr/bin/env bash
# The whole system on the local stack: Kafka, MongoDB-wire server, Redis and the three services.
# Streams simulated orders through ingest and prints where to look. Ctrl-C stops all it started.
# ORDERTAG_DEMO_SECONDS=N stops by itself after N seconds (used to check the demo unattended).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
uv_cmd=(uv); command -v uv >/dev/null || uv_cmd=(python3 -m uv)
logs="${ORDERTAG_STACK_DIR:-$root/.local}/logs"
pids=()

cleanup() {
    trap - INT TERM EXIT
    echo; echo "[demo] stopping services and the local stack"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait "${pids[@]}" 2>/dev/null
    "$here/stack.sh" stop
}
trap cleanup INT TERM EXIT

"$here/stack.sh" start || exit 1
mkdir -p "$logs"
for service in ingest tagger notifier; do
    "${uv_cmd[@]}" run --frozen python -m "services.$service" >"$logs/$service.log" 2>&1 &
    pids+=($!)
done

wait_http() {
    for _ in $(seq 1 150); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done
    echo "[demo] $1 did not answer; see $logs"; return 1
}
wait_http http://127.0.0.1:8001/healthz && wait_http http://127.0.0.1:8002/healthz \
    && wait_http http://127.0.0.1:8003/healthz || exit 1

"${uv_cmd[@]}" run --frozen ordertag simulate --rate "${ORDERTAG_DEMO_RATE:-5}" \
    --duration 86400 >"$logs/simulate.log" 2>&1 &
pids+=($!)

today="$(date -u +%Y-%m-%dT00:00:00Z)"
key="ordertag-local-dev-key"
cat <<MSG

[demo] running: the simulator streams about ${ORDERTAG_DEMO_RATE:-5} orders a second through ingest.
  live support page   http://127.0.0.1:8003/   (sign in with the API key: $key)
  Tag API docs        http://127.0.0.1:8002/docs
  ingest API docs     http://127.0.0.1:8001/docs
  metrics             http://127.0.0.1:800{1,2,3}/metrics
  logs                $logs/{ingest,tagger,notifier,simulate}.log
Try:
  curl -s -H 'X-API-Key: $key' 'http://127.0.0.1:8002/orders?all_tags=urgent&created_from=$today' | head -c 600
  curl -s -H 'X-API-Key: $key' 'http://127.0.0.1:8002/orders?all_tags=vip&created_from=$today' | head -c 600
  curl -s -H 'X-API-Key: $key' 'http://127.0.0.1:8002/reports/tag-share?created_from=$today'
  curl -s -H 'X-API-Key: $key' 'http://127.0.0.1:8002/reports/tags-over-time?period=day&format=csv'
Ctrl-C stops everything.
MSG
if [[ -n "${ORDERTAG_DEMO_SECONDS:-}" ]]; then
    sleep "$ORDERTAG_DEMO_SECONDS"
else
    wait "${pids[@]}"
fi

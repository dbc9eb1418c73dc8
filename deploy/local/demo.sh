#!/usr/bin/env bash
# The whole system on the local stack: Kafka, MongoDB-wire server, Redis and the three services.
# Streams simulated orders through ingest and prints where to look. Ctrl-C stops all it started
# (the simulator first, then the services, then the stack) and exits 0.
# ORDERTAG_DEMO_SECONDS=N stops by itself after N seconds (used to check the demo unattended).
# The services listen on ORDERTAG_INGEST_PORT, ORDERTAG_TAGGER_PORT, ORDERTAG_NOTIFIER_PORT
# (8001-8003 by default), so a demo can run beside another stack.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
uv_cmd=(uv); command -v uv >/dev/null || uv_cmd=(python3 -m uv)
logs="${ORDERTAG_STACK_DIR:-$root/.local}/logs"
ingest="http://127.0.0.1:${ORDERTAG_INGEST_PORT:-8001}"
tagger="http://127.0.0.1:${ORDERTAG_TAGGER_PORT:-8002}"
notifier="http://127.0.0.1:${ORDERTAG_NOTIFIER_PORT:-8003}"
# on these ports: the support page's links and the alerts' order_url open the console's order
# pages; the console's nav and its sign-in lead back to the support page
export ORDERTAG_NOTIFIER_CONSOLE_URL="${ORDERTAG_NOTIFIER_CONSOLE_URL:-$tagger}"
export ORDERTAG_CONSOLE_ALERTS_URL="${ORDERTAG_CONSOLE_ALERTS_URL:-$notifier/}"
services=()   # pids of the three services
simulator=""  # pid of the simulator

running() {  # running PID...: whether any of them still runs (an exited child not yet reaped does not)
    local pid
    for pid; do [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" =~ ^[^Z] ]] && return 0; done
    return 1
}

stop_pids() {  # stop_pids PID...: SIGTERM, then wait for each; SIGKILL whatever runs at 20 s
    (($#)) || return 0
    kill "$@" 2>/dev/null
    for _ in $(seq 1 100); do running "$@" || break; sleep 0.2; done
    if running "$@"; then
        echo "[demo] $* did not stop within 20 s: killed"
        kill -KILL "$@" 2>/dev/null
    fi
    wait "$@" 2>/dev/null
}

cleanup() {
    local status=$?
    # Ignored while stopping: a second Ctrl-C, or the SIGTERM make passes on, would otherwise end
    # this script halfway and leave the services (in their own sessions) and the stack running.
    trap '' INT TERM
    trap - EXIT
    echo; echo "[demo] stopping the simulator, the services and the local stack"
    # the simulator first: stopped after the services, it would log their refused connections
    [[ -n "$simulator" ]] && stop_pids "$simulator"
    stop_pids "${services[@]}"
    "$here/stack.sh" stop
    exit "$status"
}
stopped() { trap '' INT TERM; exit 0; }  # Ctrl-C or SIGTERM is the way to stop: a success
trap cleanup EXIT
trap stopped INT TERM

"$here/stack.sh" start || exit 1
mkdir -p "$logs"
for service in ingest tagger notifier; do
    # setsid: out of the terminal's process group, so Ctrl-C reaches this script alone and
    # cleanup stops them in order (uv passes the SIGTERM on to the service)
    setsid "${uv_cmd[@]}" run --frozen python -m "services.$service" >"$logs/$service.log" 2>&1 &
    services+=($!)
done

wait_http() {
    for _ in $(seq 1 150); do curl -fs "$1" >/dev/null && return 0; sleep 0.2; done
    echo "[demo] $1 did not answer; see $logs"; return 1
}
wait_http "$ingest/healthz" && wait_http "$tagger/healthz" && wait_http "$notifier/healthz" || exit 1

# --history: two years of the customer base's past orders first (two thirds in the last year),
# so the demo starts in a steady state rather than with every customer new, and a customer's
# lifetime spend is not their last year's. A busy shop's base: two orders a customer last year,
# so most orders come from returning customers: about 80 % of the live ones and 60 % of all
# (the console's tag share counts the history too). With the CLI's 20,000 customers, 5,000
# past orders left ~60 % of the live ones new (tests/unit/test_simulator.py)
setsid "${uv_cmd[@]}" run --frozen ordertag simulate --rate "${ORDERTAG_DEMO_RATE:-5}" \
    --history "${ORDERTAG_DEMO_HISTORY:-15000}" --customers "${ORDERTAG_DEMO_CUSTOMERS:-5000}" \
    --duration 86400 --ingest-url "$ingest" >"$logs/simulate.log" 2>&1 &
simulator=$!

today="$(date -u +%Y-%m-%dT00:00:00Z)"
key="ordertag-local-dev-key"
cat <<MSG

[demo] running: the simulator streams about ${ORDERTAG_DEMO_RATE:-5} orders a second through ingest.
  staff console       $tagger/console/   (sign in as admin / ordertag-admin, local only)
  live support page   $notifier/   (the console's account, or the API key: $key)
  Tag API docs        $tagger/docs
  ingest API docs     $ingest/docs
  metrics             $ingest/metrics/  $tagger/metrics/  $notifier/metrics/
  logs                $logs/{ingest,tagger,notifier,simulate}.log
Try:
  curl -s -H 'X-API-Key: $key' '$tagger/orders?all_tags=urgent&created_from=$today' | head -c 600
  curl -s -H 'X-API-Key: $key' '$tagger/orders?all_tags=vip&created_from=$today' | head -c 600
  curl -s -H 'X-API-Key: $key' '$tagger/reports/tag-share?created_from=$today'
  curl -s -H 'X-API-Key: $key' '$tagger/reports/tags-over-time?period=day&format=csv'
Ctrl-C stops everything.
MSG
if [[ -n "${ORDERTAG_DEMO_SECONDS:-}" ]]; then
    sleep "$ORDERTAG_DEMO_SECONDS" &
    wait $!  # in the background, so a SIGTERM is handled at once
else
    wait "$simulator" "${services[@]}"
fi

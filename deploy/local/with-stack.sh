#!/usr/bin/env bash
# Run a command with the local stack up; stop afterwards whatever this script started,
# so `make test` leaves nothing running (a stack that was already up stays up).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stack="$here/stack.sh"

was_running=true
"$stack" status >/dev/null 2>&1 || was_running=false
if ! $was_running; then
    trap '"$stack" stop' EXIT
fi
"$stack" start || exit 1
"$@"

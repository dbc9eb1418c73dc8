#!/usr/bin/env bash
# Prints the path of promtool, prometheus or jaeger, building it first from the Go module proxy when
# it is not cached. The binaries (~120 MB each) and Go's caches (~4 GB) live outside the repository,
# so a fresh clone on the same machine reuses them; a new machine builds once (~5 min on 2 cores).
#   deploy/observability/tools.sh promtool|prometheus|jaeger
# With ORDERTAG_TOOLS_CACHED_ONLY=1 it builds nothing: exit 3 when the tool is not cached.
set -euo pipefail

CACHE=${ORDERTAG_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ordertag/tools}

tool=${1:?usage: tools.sh promtool|prometheus|jaeger}
case $tool in
  promtool|prometheus)
    MODULE=github.com/prometheus/prometheus
    VERSION=v0.316.0   # Prometheus 3.x, tagged v0.3xx.y as a Go module
    bin_dir=$CACHE/prometheus-$VERSION ;;
  jaeger)  # the all-in-one (collector, in-memory storage, query API); OTLP in, traces out
    MODULE=github.com/jaegertracing/jaeger
    VERSION=v1.76.0
    bin_dir=$CACHE/jaeger-$VERSION ;;
  *) echo "unknown tool: $tool" >&2; exit 2 ;;
esac
binary=$bin_dir/$tool
if [[ -x $binary ]]; then
  echo "$binary"
  exit 0
fi
[[ ${ORDERTAG_TOOLS_CACHED_ONLY:-} == 1 ]] && exit 3

if ! command -v go >/dev/null; then
  echo "tools.sh: $tool is not cached at $binary and Go is not installed;" \
       "install Go >= 1.24 (https://go.dev/dl or apt-get install golang) and run again" >&2
  exit 1
fi

echo "tools.sh: building $tool $VERSION from the Go module proxy into $bin_dir" \
     "(once; about 5 minutes on 2 cores)" >&2
module_dir=$bin_dir/module
mkdir -p "$module_dir"
cd "$module_dir"
[[ -f go.mod ]] || go mod init "ordertag.local/$tool-tools" >&2
go get -tool "$MODULE/cmd/$tool@$VERSION" >&2
go build -o "$binary.partial" "$MODULE/cmd/$tool" >&2
mv "$binary.partial" "$binary"   # never leave a half-written binary where the cache check looks
echo "$binary"

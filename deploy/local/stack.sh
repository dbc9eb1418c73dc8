#!/usr/bin/env bash
# The local stack without Docker: Apache Kafka (KRaft, from Maven Central jars), a MongoDB
# wire-protocol server (mongo-java-server + H2) and Redis (Debian's redis-server).
#
#   deploy/local/stack.sh install | start | stop | status | restart [kafka|mongo|redis]
#
# Everything lives under $ORDERTAG_STACK_DIR (default: .local/ at the repo root, git-ignored).
# Every command is idempotent: start skips what runs, stop skips what does not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
stack_dir="${ORDERTAG_STACK_DIR:-$root/.local}"
kafka_port="${ORDERTAG_KAFKA_PORT:-9092}"
kafka_controller_port="${ORDERTAG_KAFKA_CONTROLLER_PORT:-9093}"
mongo_port="${ORDERTAG_MONGO_PORT:-27017}"
redis_port="${ORDERTAG_REDIS_PORT:-6379}"
kafka_heap="${ORDERTAG_KAFKA_HEAP:--Xms256m -Xmx512m}"
libs="$stack_dir/libs"
run="$stack_dir/run"
data="$stack_dir/data"
logs="$stack_dir/logs"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
    local pidfile="$run/$1.pid"
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what="$2"; shift 2
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    say "$what ready"
}

install() {
    mkdir -p "$libs" "$run" "$data" "$logs"
    if ! ls "$libs"/kafka_2.13-*.jar "$libs"/mongo-java-server-h2-backend-*.jar >/dev/null 2>&1; then
        command -v mvn >/dev/null || die "Maven (mvn) and Java 17+ are needed for Kafka and the MongoDB-wire server"
        say "resolving Kafka and mongo-java-server jars from Maven Central"
        mvn -q -B -f "$here/pom.xml" package -Dlibs.dir="$libs"
    fi
    # Debian packages: Redis, and Chromium for the support page's browser test (no browser
    # download: Playwright drives this one).
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    if ((${#missing[@]})); then
        say "installing Debian's ${missing[*]}"
        local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

start_kafka() {
    pid_alive kafka && { say "kafka already running"; return; }
    port_open "$kafka_port" && die "port $kafka_port is taken by another process (set ORDERTAG_KAFKA_PORT)"
    local kafka_data="$data/kafka" props="$run/server.properties"
    mkdir -p "$kafka_data"
    sed -e "s|@KAFKA_PORT@|$kafka_port|g" -e "s|@KAFKA_CONTROLLER_PORT@|$kafka_controller_port|g" \
        -e "s|@KAFKA_DATA@|$kafka_data|g" "$here/server.properties.in" >"$props"
    local java_opts=(-cp "$libs/*" "-Dlog4j2.configurationFile=$here/log4j2.properties"
                     "-Dkafka.logfile=$logs/kafka.log")
    if [[ ! -f "$kafka_data/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid)"
        java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" \
            --ignore-formatted >"$logs/kafka-format.log" 2>&1
    fi
    # a fresh log: readiness is read from it, and an old "started" line must not count
    [[ -f "$logs/kafka.log" ]] && mv "$logs/kafka.log" "$logs/kafka.log.1"
    # shellcheck disable=SC2086  # the heap options are meant to split into words
    nohup java $kafka_heap -XX:+UseSerialGC "${java_opts[@]}" kafka.Kafka "$props" \
        >"$logs/kafka.out" 2>&1 &
    echo $! >"$run/kafka.pid"
    wait_until 90 "kafka on 127.0.0.1:$kafka_port" kafka_ready \
        || die "kafka did not start; see $logs/kafka.log and $logs/kafka.out"
}

start_mongo() {
    pid_alive mongo && { say "mongo-wire server already running"; return; }
    port_open "$mongo_port" && die "port $mongo_port is taken by another process (set ORDERTAG_MONGO_PORT)"
    nohup java -Xmx512m -XX:+UseSerialGC -cp "$libs/*" "$here/MongoWireServer.java" \
        127.0.0.1 "$mongo_port" "$data/mongo.h2" >"$logs/mongo.log" 2>&1 &
    echo $! >"$run/mongo.pid"
    wait_until 60 "mongo-wire server on 127.0.0.1:$mongo_port" port_open "$mongo_port" \
        || die "mongo-wire server did not start; see $logs/mongo.log"
}

start_redis() {
    pid_alive redis && { say "redis already running"; return; }
    port_open "$redis_port" && die "port $redis_port is taken by another process (set ORDERTAG_REDIS_PORT)"
    mkdir -p "$data/redis"
    # Append-only persistence: customer figures survive a restart (they can also be rebuilt).
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
        --dir "$data/redis" --daemonize yes --pidfile "$run/redis.pid" --logfile "$logs/redis.log"
    # ready once it answers PONG: while it loads its append-only file it answers LOADING
    wait_until 120 "redis on 127.0.0.1:$redis_port" redis_ready \
        || die "redis did not start; see $logs/redis.log"
}

redis_ready() {
    [[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" == "PONG" ]]
}

kafka_ready() {
    grep -qs "Kafka Server started" "$logs/kafka.log" && port_open "$kafka_port"
}

stop_one() {
    local name="$1" pidfile="$run/$1.pid"
    if pid_alive "$name"; then
        local pid; pid="$(cat "$pidfile")"
        kill "$pid"
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "$name stopped"
    fi
    rm -f "$pidfile"
}

status() {
    local name port rc=0
    for name in kafka mongo redis; do
        case "$name" in kafka) port=$kafka_port ;; mongo) port=$mongo_port ;; redis) port=$redis_port ;; esac
        if pid_alive "$name" && port_open "$port"; then
            printf '%-6s running  pid %-8s 127.0.0.1:%s\n' "$name" "$(cat "$run/$name.pid")" "$port"
        else
            printf '%-6s stopped\n' "$name"; rc=3
        fi
    done
    return $rc
}

services() { if (($#)); then echo "$@"; else echo kafka mongo redis; fi; }

cmd="${1:-}"; shift || true
case "$cmd" in
    install) install ;;
    start)
        install
        for s in $(services "$@"); do "start_$s"; done ;;
    stop) for s in $(services "$@"); do stop_one "$s"; done ;;
    restart)
        for s in $(services "$@"); do stop_one "$s"; done
        for s in $(services "$@"); do "start_$s"; done ;;
    status) status ;;
    *) die "usage: $0 install|start|stop|status|restart [kafka|mongo|redis]" ;;
esac

#!/usr/bin/env bash
# The local stack without Docker: Apache Kafka (KRaft, from Maven Central jars), a MongoDB
# wire-protocol server (mongo-java-server + H2, durable acknowledgements) and Redis (Debian's
# redis-server).
#
#   deploy/local/stack.sh install
#   deploy/local/stack.sh start   [SERVER...]    start what is not running (default: all)
#   deploy/local/stack.sh stop    [SERVER...]    stop what runs
#   deploy/local/stack.sh restart [SERVER...]    stop, then start
#   deploy/local/stack.sh status  [SERVER...]    one line per server; exit 3 if any is down
#   deploy/local/stack.sh pid SERVER             the pid of a running server (exit 1 if down)
#   deploy/local/stack.sh leader TOPIC [PART]    the Kafka server leading a partition: "NAME PID"
#
# SERVER is mongo, redis, kafka (every Kafka node) or one Kafka node by name. The single broker
# is the default and is named "kafka". ORDERTAG_KAFKA_BROKERS=3 runs a 3-node KRaft cluster
# instead (each node broker and controller), named kafka-1, kafka-2, kafka-3 after their node
# ids: node N listens on ORDERTAG_KAFKA_PORT + 2(N-1), its controller on
# ORDERTAG_KAFKA_CONTROLLER_PORT + 2(N-1); topics get replication factor 3 and
# min.insync.replicas=2. Use the same ORDERTAG_KAFKA_BROKERS for every command on a stack dir.
# ORDERTAG_REDIS_NODES=3 likewise runs a 3-master Redis Cluster (redis-1..redis-3 on
# ORDERTAG_REDIS_PORT + N-1, formed with `redis-cli --cluster create` on first start); run the
# services with ORDERTAG_REDIS_CLUSTER=true against it (docs/operations.md).
#
# For a chaos run: $ORDERTAG_STACK_DIR/run/NAME.pid holds each server's pid (kafka-N.pid for
# Kafka node id N), `stack.sh pid NAME` prints it once the server answers, `kill -9` it, then
# `stack.sh start NAME` (or `restart NAME`) brings it back on the same data. A server counts
# as running only if its process is alive (not a zombie) and its port answers; a pid file
# left by a killed server is replaced on start.
#
# Everything lives under $ORDERTAG_STACK_DIR (default: .local/ at the repo root, git-ignored).
# Every command is idempotent: start skips what runs, stop skips what does not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
stack_dir="${ORDERTAG_STACK_DIR:-$root/.local}"
kafka_port="${ORDERTAG_KAFKA_PORT:-9092}"
kafka_controller_port="${ORDERTAG_KAFKA_CONTROLLER_PORT:-9093}"
kafka_brokers="${ORDERTAG_KAFKA_BROKERS:-1}"
mongo_port="${ORDERTAG_MONGO_PORT:-27017}"
redis_port="${ORDERTAG_REDIS_PORT:-6379}"
redis_nodes="${ORDERTAG_REDIS_NODES:-1}"
if ((kafka_brokers > 1)); then
    kafka_heap="${ORDERTAG_KAFKA_HEAP:--Xms128m -Xmx320m}"  # three JVMs on a small machine
else
    kafka_heap="${ORDERTAG_KAFKA_HEAP:--Xms256m -Xmx512m}"
fi
libs="$stack_dir/libs"
run="$stack_dir/run"
data="$stack_dir/data"
logs="$stack_dir/logs"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- which servers, on which ports -------------------------------------------------------------

kafka_nodes() {  # the Kafka servers' names
    if ((kafka_brokers > 1)); then
        local n; for ((n = 1; n <= kafka_brokers; n++)); do echo "kafka-$n"; done
    else
        echo kafka
    fi
}

node_id() { if [[ "$1" == kafka ]]; then echo 1; else echo "${1#kafka-}"; fi; }

redis_servers() {  # the Redis servers' names: "redis", or the nodes of a cluster
    if ((redis_nodes > 1)); then
        local n; for ((n = 1; n <= redis_nodes; n++)); do echo "redis-$n"; done
    else
        echo redis
    fi
}

port_of() {
    case "$1" in
        mongo) echo "$mongo_port" ;;
        redis) echo "$redis_port" ;;
        redis-*) echo $((redis_port + ${1#redis-} - 1)) ;;
        kafka*) echo $((kafka_port + 2 * ($(node_id "$1") - 1))) ;;
    esac
}

controller_port_of() { echo $((kafka_controller_port + 2 * ($(node_id "$1") - 1))); }

servers() {  # expand arguments (default: everything) into server names, checking each
    local arg
    (($#)) || set -- kafka mongo redis
    for arg in "$@"; do
        case "$arg" in
            kafka) kafka_nodes ;;
            mongo) echo "$arg" ;;
            redis) redis_servers ;;
            kafka-*) kafka_nodes | grep -qx "$arg" \
                || die "no server $arg (ORDERTAG_KAFKA_BROKERS=$kafka_brokers)"; echo "$arg" ;;
            redis-*) redis_servers | grep -qx "$arg" \
                || die "no server $arg (ORDERTAG_REDIS_NODES=$redis_nodes)"; echo "$arg" ;;
            *) die "no server $arg (kafka, $(kafka_nodes | paste -sd, -), mongo, $(redis_servers | paste -sd, -))" ;;
        esac
    done
}

# --- liveness ----------------------------------------------------------------------------------

# A process killed with SIGKILL can stay a zombie until its parent reaps it, and `kill -0`
# succeeds on a zombie: read the state from /proc instead (Z zombie, X dead).
proc_alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"  # the fields after "(comm) "; comm itself may hold spaces
    [[ "${stat:0:1}" != [ZX] ]]
}

pid_of() { local f="$run/$1.pid"; [[ -s "$f" ]] && cat "$f"; }

alive() { local pid; pid="$(pid_of "$1")" && proc_alive "$pid"; }

running() { alive "$1" && port_open "$(port_of "$1")"; }

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what="$2"; shift 2
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    say "$what ready"
}

# Decide whether NAME must be started: 1 if it runs; 0 after clearing what a dead one left.
needs_start() {
    local name="$1" pid
    running "$name" && { say "$name already running (pid $(pid_of "$name"))"; return 1; }
    if alive "$name"; then
        # alive but not answering: starting elsewhere, or hung
        pid="$(pid_of "$name")"
        if wait_until 180 "$name (pid $pid)" port_open "$(port_of "$name")"; then
            return 1
        fi
        say "$name (pid $pid) does not answer on port $(port_of "$name"); killing it"
        kill -9 "$pid" 2>/dev/null || true
    elif [[ -f "$run/$name.pid" ]]; then
        say "$name: replacing the stale pid file (pid $(pid_of "$name" || echo '?') is gone or a zombie)"
    fi
    rm -f "$run/$name.pid"
    # a process killed a moment ago may be a zombie whose threads still hold its socket: give
    # the kernel a few seconds to release the port before calling it another process's
    local deadline=$((SECONDS + 10))
    while port_open "$(port_of "$name")" && ((SECONDS < deadline)); do sleep 0.2; done
    port_open "$(port_of "$name")" \
        && die "port $(port_of "$name") is taken by another process (choose other ORDERTAG_*_PORT)"
    return 0
}

# --- install -----------------------------------------------------------------------------------

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
    # Chinese text in the console's screenshots and browser tests
    [[ -d /usr/share/fonts/truetype/wqy ]] || missing+=(fonts-wqy-microhei)
    if ((${#missing[@]})); then
        say "installing Debian's ${missing[*]}"
        local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# --- Kafka -------------------------------------------------------------------------------------

set_java_opts() {  # set_java_opts NAME: java_opts=(classpath and logging of one node)
    java_opts=(-cp "$libs/*" "-Dlog4j2.configurationFile=$here/log4j2.properties"
               "-Dkafka.logfile=$logs/$1.log")
}

kafka_data_of() { if [[ "$1" == kafka ]]; then echo "$data/kafka"; else echo "$data/$1"; fi; }

write_kafka_props() {  # write_kafka_props NAME: its server.properties, printed path
    local name="$1" voters="" node replicas=1 min_isr=1 props="$run/$1.properties"
    for node in $(kafka_nodes); do
        voters+="${voters:+,}$(node_id "$node")@127.0.0.1:$(controller_port_of "$node")"
    done
    if ((kafka_brokers > 1)); then replicas=3; min_isr=2; fi
    sed -e "s|@NODE_ID@|$(node_id "$name")|g" -e "s|@VOTERS@|$voters|g" \
        -e "s|@KAFKA_PORT@|$(port_of "$name")|g" \
        -e "s|@KAFKA_CONTROLLER_PORT@|$(controller_port_of "$name")|g" \
        -e "s|@KAFKA_DATA@|$(kafka_data_of "$name")|g" \
        -e "s|@REPLICAS@|$replicas|g" -e "s|@MIN_ISR@|$min_isr|g" \
        "$here/server.properties.in" >"$props"
    echo "$props"
}

launch_kafka() {  # launch_kafka NAME: format its storage once, start it in the background
    local name="$1" props kafka_data cluster_id
    kafka_data="$(kafka_data_of "$name")"
    mkdir -p "$kafka_data"
    props="$(write_kafka_props "$name")"
    local java_opts; set_java_opts "$name"
    if [[ ! -f "$kafka_data/meta.properties" ]]; then
        # every node of a cluster is formatted with the same cluster id
        local id_file="$data/kafka-cluster-$kafka_brokers.id"
        [[ -s "$id_file" ]] || java "${java_opts[@]}" kafka.tools.StorageTool random-uuid >"$id_file"
        cluster_id="$(cat "$id_file")"
        java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$props" \
            --ignore-formatted >"$logs/$name-format.log" 2>&1
    fi
    # a fresh log: readiness is read from it, and an old "started" line must not count
    [[ -f "$logs/$name.log" ]] && mv "$logs/$name.log" "$logs/$name.log.1"
    # shellcheck disable=SC2086  # the heap options are meant to split into words
    nohup java $kafka_heap -XX:+UseSerialGC "${java_opts[@]}" kafka.Kafka "$props" \
        >"$logs/$name.out" 2>&1 &
    echo $! >"$run/$name.pid"
}

kafka_ready() {
    grep -qs "Kafka Server started" "$logs/$1.log" && port_open "$(port_of "$1")"
}

start_kafka() {  # start_kafka NAME...: launch all first (a cluster node waits for a quorum)
    local name launched=()
    for name in "$@"; do
        if needs_start "$name"; then launch_kafka "$name"; launched+=("$name"); fi
    done
    for name in "${launched[@]}"; do
        wait_until 120 "$name on 127.0.0.1:$(port_of "$name")" kafka_ready "$name" \
            || die "$name did not start; see $logs/$name.log and $logs/$name.out"
    done
}

# --- MongoDB-wire server and Redis -------------------------------------------------------------

start_mongo() {
    needs_start mongo || return 0
    # mongo-java-server sorts a query's whole result in memory: the figures rebuild after Redis
    # came back empty (every order, by date) filled 512 MB on the chaos run's 30,000 orders.
    # A 1 GB young generation: each commit replaces the pages it wrote, and with the default
    # sizing they were promoted before they died; collecting was a third of the server's CPU
    # per order, a sixth with this. The heap starts whole: grown from the default start the
    # old generation took a full collection at each step (docs/local-stack.md, "The server's
    # heap").
    nohup java ${ORDERTAG_MONGO_HEAP:--Xms2g -Xmx2g -Xmn1g} -XX:+UseSerialGC -cp "$libs/*" "$here/MongoWireServer.java" \
        127.0.0.1 "$mongo_port" "$data/mongo.h2" >"$logs/mongo.log" 2>&1 &
    echo $! >"$run/mongo.pid"
    # opening a large H2 file takes a while: H2 never shrinks it after dropped databases
    wait_until 300 "mongo-wire server on 127.0.0.1:$mongo_port" running mongo \
        || die "mongo-wire server did not start; see $logs/mongo.log"
}

start_redis() {  # start_redis NAME...: one server, or the nodes of a cluster
    local name port cluster=()
    for name in "$@"; do
        needs_start "$name" || continue
        port="$(port_of "$name")"
        mkdir -p "$data/$name"
        ((redis_nodes > 1)) && cluster=(--cluster-enabled yes --cluster-config-file nodes.conf
                                        --cluster-node-timeout 5000)
        # Append-only persistence: customer figures survive a restart (they can also be rebuilt).
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes "${cluster[@]}" \
            --dir "$data/$name" --daemonize yes --pidfile "$run/$name.pid" --logfile "$logs/$name.log"
        # ready once it answers PONG: while it loads its append-only file it answers LOADING
        wait_until 120 "$name on 127.0.0.1:$port" redis_ready "$port" \
            || die "$name did not start; see $logs/$name.log"
    done
    if ((redis_nodes > 1)); then form_redis_cluster; fi
}

redis_ready() {
    [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == "PONG" ]]
}

form_redis_cluster() {  # the first start shares the slots out; later starts rejoin from nodes.conf
    local nodes=() name
    for name in $(redis_servers); do
        running "$name" || return 0  # formed once every node runs
        nodes+=("127.0.0.1:$(port_of "$name")")
    done
    if redis-cli -p "$redis_port" cluster info | grep -q '^cluster_slots_assigned:0'; then
        redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$logs/redis-cluster.log" 2>&1 \
            || die "redis-cli --cluster create failed; see $logs/redis-cluster.log"
    fi
    wait_until 60 "redis cluster of ${#nodes[@]} masters" redis_cluster_ok \
        || die "the redis cluster is not ok; see $logs/redis-*.log"
}

redis_cluster_ok() {
    local name
    for name in $(redis_servers); do
        redis-cli -p "$(port_of "$name")" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    done
}

# --- stop, status, pid, leader -----------------------------------------------------------------

stop() {  # stop NAME...: SIGTERM to all at once (cluster nodes need each other to shut down)
    local name pid pids=() names=()
    for name in "$@"; do
        if alive "$name"; then
            pid="$(pid_of "$name")"; kill "$pid" 2>/dev/null || true
            pids+=("$pid"); names+=("$name")
        fi
    done
    local deadline=$((SECONDS + 30)) i
    for i in "${!pids[@]}"; do
        while proc_alive "${pids[$i]}" && ((SECONDS < deadline)); do sleep 0.2; done
        proc_alive "${pids[$i]}" && kill -9 "${pids[$i]}" 2>/dev/null
        say "${names[$i]} stopped"
    done
    for name in "$@"; do rm -f "$run/$name.pid"; done
}

status() {  # status NAME...
    local name rc=0
    for name in "$@"; do
        if running "$name"; then
            printf '%-8s running  pid %-8s 127.0.0.1:%s\n' "$name" "$(pid_of "$name")" "$(port_of "$name")"
        else
            printf '%-8s stopped\n' "$name"; rc=3
        fi
    done
    return $rc
}

leader() {  # leader TOPIC [PARTITION]: "NAME PID" of the node leading that partition
    local topic="${1:?usage: stack.sh leader TOPIC [PARTITION]}" partition="${2:-0}" bootstrap="" node id
    for node in $(kafka_nodes); do bootstrap+="${bootstrap:+,}127.0.0.1:$(port_of "$node")"; done
    id="$(cd "$root" && uv run --frozen python "$here/kafka_leader.py" "$bootstrap" "$topic" "$partition")" \
        || die "no leader known for $topic partition $partition"
    for node in $(kafka_nodes); do
        if [[ "$(node_id "$node")" == "$id" ]]; then echo "$node $(pid_of "$node" || echo -)"; return; fi
    done
    die "leader node id $id is not a server of this stack"
}

start() {
    local name kafka=() redis=() others=()
    for name in "$@"; do
        case "$name" in
            kafka*) kafka+=("$name") ;;
            redis*) redis+=("$name") ;;
            *) others+=("$name") ;;
        esac
    done
    if ((${#kafka[@]})); then start_kafka "${kafka[@]}"; fi
    for name in "${others[@]}"; do "start_$name"; done
    if ((${#redis[@]})); then start_redis "${redis[@]}"; fi
}

cmd="${1:-}"; shift || true
case "$cmd" in
    install) install ;;
    start) names="$(servers "$@")"; install; start $names ;;
    stop) names="$(servers "$@")"; stop $names ;;
    restart) names="$(servers "$@")"; stop $names; start $names ;;
    status) names="$(servers "$@")"; status $names ;;
    pid) name="$(servers "${1:?usage: stack.sh pid SERVER}")"
         running "$name" || die "$name is not running"; pid_of "$name" ;;
    leader) leader "$@" ;;
    *) die "usage: $0 install | start|stop|restart [SERVER...] | status [SERVER...] | pid SERVER | leader TOPIC [PARTITION]" ;;
esac

#!/usr/bin/env bash
# Dev/test Kafka (3.9.x, KRaft, no ZooKeeper, no Docker) run straight from Maven jars.
#
#   kafka.sh jars                  fetch broker jars into $RUN/kafka/libs (once per pom.xml)
#   kafka.sh start | stop          single combined broker+controller on 127.0.0.1:9092
#   kafka.sh cluster-start | cluster-stop
#                                  3-node KRaft cluster on 127.0.0.1:19092..19094
#   kafka.sh node-kill N | node-start N
#                                  kill -9 / restart cluster node N (fault tests)
#   kafka.sh secure-start | secure-stop
#                                  single node in the secure profile on 127.0.0.1:9096:
#                                  SASL/SCRAM-SHA-512 over TLS, one user per service, ACLs
#                                  from deploy/k8s/base/kafka/users.yaml (see README.md)
#   kafka.sh status                running/stopped for every node
#   kafka.sh wipe                  stop everything, delete data (keeps jars)
#   kafka.sh run-class CLASS ARGS  run a Kafka tool class with the jar classpath
#
# All state lives under $SHOPSTREAM_RUN_DIR (default <repo>/.run). See README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${SHOPSTREAM_RUN_DIR:-$REPO_ROOT/.run}"
# Absolute, because paths end up in server.properties and in the pid/cmdline check.
[[ "$RUN_DIR" == /* ]] || RUN_DIR="$PWD/$RUN_DIR"
KAFKA_DIR="$RUN_DIR/kafka"
LIBS_DIR="$KAFKA_DIR/libs"
SINGLE_DIR="$KAFKA_DIR/single"
CLUSTER_DIR="$KAFKA_DIR/cluster"
SECURE_DIR="$KAFKA_DIR/secure"
POM="$SCRIPT_DIR/pom.xml"
LOG4J="$SCRIPT_DIR/log4j.properties"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_CLUSTER_BASE_PORT="${KAFKA_CLUSTER_BASE_PORT:-19092}"
# The secure profile has ports of its own, so it can run beside the default node.
KAFKA_SECURE_PORT="${KAFKA_SECURE_PORT:-9096}"
KAFKA_SECURE_CONTROLLER_PORT="${KAFKA_SECURE_CONTROLLER_PORT:-9097}"
# The users and their ACLs: the same generated list the Kubernetes manifests apply.
KAFKA_SECURE_USERS="${KAFKA_SECURE_USERS:-$REPO_ROOT/deploy/k8s/base/kafka/users.yaml}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
CLUSTER_SIZE=3

# In KRaft 3.9 this is logged by kafka.server.KafkaRaftServer once the controller and
# broker have both finished startup (broker registered, listeners accepting requests).
# An open port alone is not enough: the acceptor binds well before requests are served.
READY_LINE="Kafka Server started"

# Same flags as upstream kafka-run-class.sh / kafka-server-start.sh, minus GC logging.
JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
          -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*"; }

find_java() {
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        JAVA="$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        JAVA="$(command -v java)"
    else
        die "java not found: install a JDK (17+) or set JAVA_HOME"
    fi
    # One-shot tools (StorageTool, TopicCommand, perf tests): small heap, and WARN to
    # stderr instead of the broker's server.log (see log4j.properties).
    TOOL_JAVA=("$JAVA" -Xmx256m "${JVM_OPTS[@]}" -cp "$LIBS_DIR/*"
               -Dlog4j.configuration="file:$LOG4J" -Dkafka.root.logger="WARN, stderr")
}

# Serialise mutating commands (e.g. `make -j kafka-up kafka-cluster-up`, or two
# terminals) so two invocations never format or launch the same node at once.
take_lock() {
    mkdir -p "$KAFKA_DIR"
    exec 9>"$KAFKA_DIR/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
}

# ---------------------------------------------------------------- jars

jars_current() {
    [[ -f "$LIBS_DIR/.pom.sha256" ]] \
        && [[ "$(cat "$LIBS_DIR/.pom.sha256")" == "$(sha256sum "$POM" | cut -d' ' -f1)" ]]
}

cmd_jars() {
    jars_current && return 0
    # The JVM loads classes lazily: swapping the jars under a live broker ends in
    # NoClassDefFoundError at some later, unrelated moment.
    any_running && die "pom.xml changed: stop Kafka first (make kafka-wipe), then retry"
    command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch the Kafka jars)"
    log "fetching Kafka jars into $LIBS_DIR (once per pom.xml change) ..."
    # Fetch into a fresh dir and swap it in: copy-dependencies into an existing folder
    # would leave the old version's jars next to the new ones after a version bump, and
    # a half-finished fetch must never look like a usable classpath.
    local tmp="$KAFKA_DIR/libs.tmp.$$" mvn_log="$KAFKA_DIR/mvn.log" t0=$SECONDS
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # -q still prints bare colour-reset escapes on Maven 3.8, so keep its output in a
    # file and show it only when it fails.
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies@kafka-libs \
            -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
        rm -rf "$tmp"
        cat "$mvn_log" >&2
        die "jar fetch failed (full output: $mvn_log)"
    fi
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "jar fetch produced no kafka_2.13 jar"
    sha256sum "$POM" | cut -d' ' -f1 >"$tmp/.pom.sha256"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- helpers

any_running() {
    local n
    node_pid "$SINGLE_DIR" >/dev/null && return 0
    node_pid "$SECURE_DIR" >/dev/null && return 0
    for ((n = 1; n <= CLUSTER_SIZE; n++)); do
        node_pid "$(node_dir "$n")" >/dev/null && return 0
    done
    return 1
}

port_open() {  # port_open PORT -> 0 if something accepts TCP on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Node layout: <dir>/server.properties, <dir>/data, <dir>/logs/server.log, <dir>/kafka.pid
node_pid() {  # prints the pid if the node in DIR is running; clears stale pid files
    local dir="$1" pidfile="$1/kafka.pid" pid args
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    # Check the command line too, not just kill -0: after a reboot or a kill -9 the pid
    # may have been reused by an unrelated process we must not signal.
    if [[ "$pid" =~ ^[0-9]+$ ]] && args="$(ps -ww -o args= -p "$pid" 2>/dev/null)" \
            && [[ "$args" == *kafka.Kafka*"$dir/server.properties"* ]]; then
        echo "$pid"
        return 0
    fi
    rm -f "$pidfile"
    return 1
}

run_class() { "${TOOL_JAVA[@]}" "$@"; }  # run_class MAIN_CLASS ARGS...

# write_props DIR NODE_ID BROKER_PORT CONTROLLER_PORT VOTERS PROFILE
# Regenerated on every start so port overrides via env always take effect.
write_props() {
    local dir="$1" id="$2" port="$3" cport="$4" voters="$5" profile="$6" rf isr
    local listener=PLAINTEXT controller_protocol=PLAINTEXT
    if [[ "$profile" == cluster ]]; then rf=3 isr=2; else rf=1 isr=1; fi
    if [[ "$profile" == secure ]]; then listener=SASL_SSL controller_protocol=SSL; fi
    mkdir -p "$dir/data" "$dir/logs"
    cat >"$dir/server.properties" <<EOF
# Generated by deploy/kafka/kafka.sh on each start - edit the script, not this file.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=$listener://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listener://127.0.0.1:$port
inter.broker.listener.name=$listener
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:$controller_protocol,$listener:$listener
log.dirs=$dir/data

# Durability: $profile profile.
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr

# Topics are created explicitly by the app/tests; a typo must fail, not create a topic.
auto.create.topics.enable=false
num.partitions=1
# No 3 s wait before the first consumer-group rebalance: makes tests fast.
group.initial.rebalance.delay.ms=0
# Sized for a 2-core machine that also runs the app and the tests.
num.network.threads=2
num.io.threads=2
EOF
    if [[ "$profile" == secure ]]; then secure_props "$dir" >>"$dir/server.properties"; fi
}

# ---------------------------------------------------------------- secure profile

# secure_secrets DIR: a CA, the broker's certificate (for 127.0.0.1 and localhost, signed by
# the CA; also its client certificate towards the controller), the keystore password and the
# admin's SCRAM password. Made once per data directory, never committed (modes 600 / 700).
secure_secrets() {
    local tls="$1/tls" cred="$1/credentials"
    [[ -s "$tls/broker.p12" && -s "$cred/admin" ]] && return 0
    command -v openssl >/dev/null 2>&1 || die "openssl is needed for the secure profile"
    mkdir -p "$tls" "$cred"
    chmod 700 "$tls" "$cred"
    (
        umask 077
        openssl rand -hex 24 >"$cred/admin"
        openssl rand -hex 24 >"$tls/keystore.password"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=shopstream-dev-ca" \
            -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=shopstream-broker" \
            -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/broker.ext"
        openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
            -CAcreateserial -days 30 -extfile "$tls/broker.ext" -out "$tls/broker.pem" 2>/dev/null
        openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" \
            -certfile "$tls/ca.pem" -name broker -out "$tls/broker.p12" \
            -passout "file:$tls/keystore.password"
    ) || die "could not make the secure profile's certificates in $tls"
}

# secure_props DIR: clients authenticate with SCRAM-SHA-512 over TLS; the controller listener
# takes TLS with client certificates (KRaft keeps SCRAM credentials in the metadata log, so a
# controller listener cannot use SCRAM); nothing is allowed without an ACL.
secure_props() {
    local tls="$1/tls" kspw adminpw
    kspw="$(cat "$tls/keystore.password")" adminpw="$(cat "$1/credentials/admin")"
    cat <<EOF

# Secure profile: SASL/SCRAM-SHA-512 over TLS; users and ACLs by deploy/kafka/secure_users.py.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$adminpw";
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$kspw
ssl.key.password=$kspw
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:CN=shopstream-broker
EOF
}

# ensure_formatted DIR CLUSTER_ID_FILE: format storage once, with the shared cluster id.
ensure_formatted() {
    local dir="$1" idfile="$2" cid
    shift 2  # the rest: extra StorageTool arguments (the secure profile's --add-scram)
    [[ -f "$dir/data/meta.properties" ]] && return 0
    if [[ ! -s "$idfile" ]]; then
        run_class kafka.tools.StorageTool random-uuid >"$idfile.tmp"
        mv "$idfile.tmp" "$idfile"
    fi
    cid="$(tr -d '[:space:]' <"$idfile")"
    # Static controller.quorum.voters: no --standalone (4.1 rejects the combination).
    run_class kafka.tools.StorageTool format -t "$cid" -c "$dir/server.properties" \
        --ignore-formatted "$@" >"$dir/logs/format.out" 2>&1 \
        || { cat "$dir/logs/format.out" >&2; die "storage format failed for $dir"; }
}

# launch DIR HEAP_MIN HEAP_MAX: start the broker detached and record where its log
# stood, so the readiness check only looks at lines written by this run.
launch() {
    local dir="$1" xms="$2" xmx="$3" log="$1/logs/server.log"
    if [[ -f "$log" ]]; then wc -c <"$log" >"$dir/.log-offset"; else echo 0 >"$dir/.log-offset"; fi
    # setsid: own session, so Ctrl-C / the end of `make` does not take the broker down.
    # nohup: ignore SIGHUP belt-and-braces. The inner bash writes its own pid before
    # exec'ing java (same pid), which is exact whether or not setsid had to fork.
    # 9>&-: do not let the broker inherit (and hold forever) our lock fd.
    # shellcheck disable=SC2016  # $$/$1/$@ are for the inner bash
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/kafka.pid" \
        "$JAVA" "-Xms$xms" "-Xmx$xmx" "${JVM_OPTS[@]}" \
        -Dkafka.logs.dir="$dir/logs" -Dlog4j.configuration="file:$LOG4J" \
        -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties" \
        </dev/null >"$dir/logs/console.out" 2>&1 9>&- &
    # Wait for the pid file so callers can rely on it right after launch.
    local i
    for i in {1..50}; do [[ -s "$dir/kafka.pid" ]] && return 0; sleep 0.1; done
    die "broker in $dir did not start (see $dir/logs/console.out)"
}

since_launch() {  # since_launch DIR: what DIR's server.log got since the last launch
    local log="$1/logs/server.log" off
    [[ -f "$log" ]] || return 0
    off="$(cat "$1/.log-offset" 2>/dev/null || echo 0)"
    # Shorter than at launch means the appender rolled it over: all of it is new then.
    if (( $(wc -c <"$log") < off )); then off=0; fi
    tail -c +"$((off + 1))" "$log"
}

node_ready() {  # node_ready DIR PORT
    # Process substitution, not a pipe: with pipefail, grep -q exiting early would
    # SIGPIPE tail and turn a match into a failure once the log outgrows a pipe buffer.
    port_open "$2" && grep -q "$READY_LINE" <(since_launch "$1")
}

show_tail() {  # only this run's lines: earlier runs' shutdown noise would mislead
    local dir="$1"
    echo "---- tail of $dir/logs/server.log" >&2
    since_launch "$dir" | tail -n 40 >&2 || true
    if [[ -s "$dir/logs/console.out" ]]; then
        echo "---- tail of $dir/logs/console.out" >&2
        tail -n 20 "$dir/logs/console.out" >&2
    fi
}

# wait_ready NAME:DIR:PORT ... : waits for all nodes; on failure shows logs, stops them.
wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT)) spec name dir port pending
    printf 'kafka.sh: waiting for %s ' "${*%%:*}"
    while :; do
        pending=()
        for spec in "$@"; do
            IFS=: read -r name dir port <<<"$spec"
            node_ready "$dir" "$port" && continue
            if ! node_pid "$dir" >/dev/null; then
                echo " exited"
                show_tail "$dir"
                die "$name died during startup"
            fi
            pending+=("$spec")
        done
        if ((${#pending[@]} == 0)); then echo " ready"; return 0; fi
        if ((SECONDS >= deadline)); then
            echo " timeout"
            for spec in "${pending[@]}"; do
                IFS=: read -r name dir port <<<"$spec"
                echo "== $name not ready after ${START_TIMEOUT}s" >&2
                show_tail "$dir"
            done
            # A half-started broker would keep the ports and confuse the next attempt.
            for spec in "$@"; do IFS=: read -r name dir port <<<"$spec"; stop_nodes "$dir" >/dev/null; done
            die "startup timed out"
        fi
        printf '.'
        sleep 1
    done
}

# stop_nodes DIR... : SIGTERM all at once, then wait, then SIGKILL stragglers.
# All at once matters for the cluster: stopped one by one, the last nodes lose their
# controller quorum and their controlled shutdown stalls until the kill timeout.
stop_nodes() {
    local dir pid pids=() dirs=() deadline=$((SECONDS + STOP_TIMEOUT))
    for dir in "$@"; do
        if pid="$(node_pid "$dir")"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid"); dirs+=("$dir")
        fi
    done
    ((${#pids[@]})) || return 0
    local i alive
    while :; do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        if ((SECONDS >= deadline)); then
            for i in "${!pids[@]}"; do
                if kill -0 "${pids[i]}" 2>/dev/null; then
                    log "${dirs[i]##*/}: no exit after ${STOP_TIMEOUT}s, sending SIGKILL"
                    kill -KILL "${pids[i]}" 2>/dev/null || true
                fi
            done
            sleep 1
            break
        fi
        sleep 0.5
    done
    for dir in "${dirs[@]}"; do rm -f "$dir/kafka.pid"; done
}

# ---------------------------------------------------------------- single node

cmd_start() {
    local pid
    if pid="$(node_pid "$SINGLE_DIR")"; then
        log "single node already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    cmd_jars
    find_java
    port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is already in use by another process"
    port_open "$KAFKA_CONTROLLER_PORT" && die "127.0.0.1:$KAFKA_CONTROLLER_PORT is already in use by another process"
    write_props "$SINGLE_DIR" 1 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" \
        "1@127.0.0.1:$KAFKA_CONTROLLER_PORT" single
    ensure_formatted "$SINGLE_DIR" "$SINGLE_DIR/cluster.id"
    launch "$SINGLE_DIR" 512m 512m
    wait_ready "single:$SINGLE_DIR:$KAFKA_PORT"
    log "single node up: bootstrap 127.0.0.1:$KAFKA_PORT (pid $(cat "$SINGLE_DIR/kafka.pid"), logs $SINGLE_DIR/logs)"
}

cmd_stop() {
    if ! node_pid "$SINGLE_DIR" >/dev/null; then
        log "single node not running"
        return 0
    fi
    stop_nodes "$SINGLE_DIR"
    log "single node stopped"
}

# ---------------------------------------------------------------- secure single node

cmd_secure_start() {
    local pid python
    if pid="$(node_pid "$SECURE_DIR")"; then
        log "secure node already running (pid $pid) on 127.0.0.1:$KAFKA_SECURE_PORT"
        return 0
    fi
    cmd_jars
    find_java
    port_open "$KAFKA_SECURE_PORT" && die "127.0.0.1:$KAFKA_SECURE_PORT is already in use by another process"
    port_open "$KAFKA_SECURE_CONTROLLER_PORT" && die "127.0.0.1:$KAFKA_SECURE_CONTROLLER_PORT is already in use by another process"
    python="${SHOPSTREAM_PYTHON:-$REPO_ROOT/.venv/bin/python}"
    [[ -x "$python" ]] || die "the secure profile needs the project's Python ($python; make python-deps)"
    [[ -f "$KAFKA_SECURE_USERS" ]] || die "no user list at $KAFKA_SECURE_USERS"
    mkdir -p "$SECURE_DIR"
    secure_secrets "$SECURE_DIR"
    write_props "$SECURE_DIR" 1 "$KAFKA_SECURE_PORT" "$KAFKA_SECURE_CONTROLLER_PORT" \
        "1@127.0.0.1:$KAFKA_SECURE_CONTROLLER_PORT" secure
    # The admin (also the broker's own SCRAM user) exists from the first metadata record on.
    ensure_formatted "$SECURE_DIR" "$SECURE_DIR/cluster.id" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$SECURE_DIR/credentials/admin")]"
    launch "$SECURE_DIR" 512m 512m
    wait_ready "secure:$SECURE_DIR:$KAFKA_SECURE_PORT"
    # Service users, their ACLs and the registry's topics, made by the admin.
    if ! "$python" "$SCRIPT_DIR/secure_users.py" --bootstrap "127.0.0.1:$KAFKA_SECURE_PORT" \
            --dir "$SECURE_DIR" --users "$KAFKA_SECURE_USERS"; then
        stop_nodes "$SECURE_DIR"
        die "could not create the secure profile's users and ACLs"
    fi
    log "secure node up: bootstrap 127.0.0.1:$KAFKA_SECURE_PORT (SASL_SSL, SCRAM-SHA-512; CA $SECURE_DIR/tls/ca.pem, passwords in $SECURE_DIR/credentials)"
}

cmd_secure_stop() {
    if ! node_pid "$SECURE_DIR" >/dev/null; then
        log "secure node not running"
        return 0
    fi
    stop_nodes "$SECURE_DIR"
    log "secure node stopped"
}

# ---------------------------------------------------------------- cluster

node_dir() { echo "$CLUSTER_DIR/node-$1"; }
node_port() { echo $((KAFKA_CLUSTER_BASE_PORT + $1 - 1)); }
node_cport() { echo $((KAFKA_CLUSTER_BASE_PORT + 100 + $1 - 1)); }
cluster_voters() {
    local n v=()
    for ((n = 1; n <= CLUSTER_SIZE; n++)); do v+=("$n@127.0.0.1:$(node_cport "$n")"); done
    (IFS=,; echo "${v[*]}")
}
check_node_arg() {
    if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > CLUSTER_SIZE)); then
        die "node number must be 1..$CLUSTER_SIZE"
    fi
}

# prepare_and_launch_node N: no waiting here - see cmd_cluster_start.
prepare_and_launch_node() {
    local n="$1" dir port cport
    dir="$(node_dir "$n")" port="$(node_port "$n")" cport="$(node_cport "$n")"
    port_open "$port" && die "127.0.0.1:$port (node $n) is already in use by another process"
    port_open "$cport" && die "127.0.0.1:$cport (node $n controller) is already in use by another process"
    write_props "$dir" "$n" "$port" "$cport" "$(cluster_voters)" cluster
    ensure_formatted "$dir" "$CLUSTER_DIR/cluster.id"
    launch "$dir" 384m 512m
}

cmd_cluster_start() {
    local n dir specs=() running=()
    cmd_jars
    find_java
    mkdir -p "$CLUSTER_DIR"
    # Launch every missing node before waiting for any: a node cannot finish startup
    # until a controller quorum (2 of 3 voters) exists, so start-and-wait one at a time
    # would block on the first node until it timed out.
    for ((n = 1; n <= CLUSTER_SIZE; n++)); do
        dir="$(node_dir "$n")"
        if node_pid "$dir" >/dev/null; then
            running+=("$n")
        else
            prepare_and_launch_node "$n"
        fi
        specs+=("node-$n:$dir:$(node_port "$n")")
    done
    if ((${#running[@]} == CLUSTER_SIZE)); then
        log "cluster already running"
        return 0
    fi
    ((${#running[@]} == 0)) || log "node(s) ${running[*]} were already running"
    wait_ready "${specs[@]}"
    log "cluster up: bootstrap $(for ((n = 1; n <= CLUSTER_SIZE; n++)); do printf '127.0.0.1:%s,' "$(node_port "$n")"; done | sed 's/,$//')"
}

cmd_cluster_stop() {
    local n dir dirs=()
    for ((n = 1; n <= CLUSTER_SIZE; n++)); do
        dir="$(node_dir "$n")"
        node_pid "$dir" >/dev/null && dirs+=("$dir")
    done
    if ((${#dirs[@]} == 0)); then
        log "cluster not running"
        return 0
    fi
    stop_nodes "${dirs[@]}"
    log "cluster stopped (${#dirs[@]} node(s))"
}

cmd_node_kill() {
    check_node_arg "${1:-}"
    local dir pid
    dir="$(node_dir "$1")"
    if ! pid="$(node_pid "$dir")"; then
        log "node $1 not running"
        return 0
    fi
    kill -KILL "$pid"
    # Reap-free wait: the process is not our child, so poll until it is gone.
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$dir/kafka.pid"
    log "node $1 killed (SIGKILL, pid $pid)"
}

cmd_node_start() {
    check_node_arg "${1:-}"
    local dir pid
    dir="$(node_dir "$1")"
    if pid="$(node_pid "$dir")"; then
        log "node $1 already running (pid $pid)"
        return 0
    fi
    cmd_jars
    find_java
    prepare_and_launch_node "$1"
    wait_ready "node-$1:$dir:$(node_port "$1")"
}

# ---------------------------------------------------------------- status / wipe

cmd_status() {
    local name dir pid port
    for name in single secure $(for ((n = 1; n <= CLUSTER_SIZE; n++)); do echo "node-$n"; done); do
        case "$name" in
            single) dir="$SINGLE_DIR" ;;
            secure) dir="$SECURE_DIR" ;;
            *) dir="$CLUSTER_DIR/$name" ;;
        esac
        if pid="$(node_pid "$dir")"; then
            # Port from the node's own config: it may have been started with other env.
            port="$(sed -n 's|^advertised.listeners=[A-Z_]*://||p' "$dir/server.properties")"
            printf '%-7s running (pid %s) %s\n' "$name" "$pid" "$port"
        else
            printf '%-7s stopped\n' "$name"
        fi
    done
}

cmd_wipe() {
    cmd_stop
    cmd_secure_stop
    cmd_cluster_stop
    rm -rf "$SINGLE_DIR" "$SECURE_DIR" "$CLUSTER_DIR"
    log "wiped $SINGLE_DIR, $SECURE_DIR and $CLUSTER_DIR (jars kept in $LIBS_DIR)"
}

usage() {
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
        run-class)
            (($#)) || die "usage: kafka.sh run-class CLASS [ARGS...]"
            # Lock only to fetch, then release: tools (consumers, perf tests) may run
            # for a long time and must not block start/stop.
            jars_current || { take_lock; cmd_jars; exec 9>&-; }
            find_java
            # exec: signals sent to this script (test harness timeouts) reach the JVM.
            exec "${TOOL_JAVA[@]}" "$@" ;;
        status) cmd_status ;;
        jars) take_lock; cmd_jars ;;
        start) take_lock; cmd_start ;;
        stop) take_lock; cmd_stop ;;
        secure-start) take_lock; cmd_secure_start ;;
        secure-stop) take_lock; cmd_secure_stop ;;
        cluster-start) take_lock; cmd_cluster_start ;;
        cluster-stop) take_lock; cmd_cluster_stop ;;
        node-kill) take_lock; cmd_node_kill "$@" ;;
        node-start) take_lock; cmd_node_start "$@" ;;
        wipe) take_lock; cmd_wipe ;;
        -h|--help|help) usage 0 ;;
        *) usage 1 >&2 ;;
    esac
}

main "$@"

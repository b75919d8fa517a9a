#!/usr/bin/env bash
# Local Prometheus for the shopstream stack: the Debian `prometheus` package's binary, run
# directly (no systemd) with deploy/prometheus/prometheus.yml, scraping every service.
#
#   prometheus.sh start     start in the background, wait until /-/ready answers
#   prometheus.sh stop      SIGTERM (SIGKILL after PROMETHEUS_STOP_TIMEOUT seconds)
#   prometheus.sh status    running (pid, url) or stopped
#   prometheus.sh check     validate the config and rules with promtool
#
# Environment: PROMETHEUS_PORT (default 9090), PROMETHEUS_HOST (default 127.0.0.1),
# PROMETHEUS_BIN (default /usr/bin/prometheus), PROMETHEUS_RETENTION (default 2d),
# PROMETHEUS_START_TIMEOUT (default 30), PROMETHEUS_STOP_TIMEOUT (default 30).
# State (TSDB, pid, log) lives under $SHOPSTREAM_RUN_DIR/prometheus (default <repo>/.run).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
RUN_DIR="${SHOPSTREAM_RUN_DIR:-$REPO_ROOT/.run}"
[[ "$RUN_DIR" == /* ]] || RUN_DIR="$PWD/$RUN_DIR"
STATE_DIR="$RUN_DIR/prometheus"
DATA_DIR="$STATE_DIR/data"
PID_FILE="$STATE_DIR/prometheus.pid"
LOG_FILE="$STATE_DIR/prometheus.log"
CONFIG="$SCRIPT_DIR/prometheus.yml"

PROMETHEUS_BIN="${PROMETHEUS_BIN:-/usr/bin/prometheus}"
PROMTOOL_BIN="${PROMTOOL_BIN:-$(dirname "$PROMETHEUS_BIN")/promtool}"
HOST="${PROMETHEUS_HOST:-127.0.0.1}"
PORT="${PROMETHEUS_PORT:-9090}"
RETENTION="${PROMETHEUS_RETENTION:-2d}"
START_TIMEOUT="${PROMETHEUS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${PROMETHEUS_STOP_TIMEOUT:-30}"
URL="http://$HOST:$PORT"

die() { echo "prometheus.sh: $*" >&2; exit 1; }
log() { echo "prometheus.sh: $*"; }

require_binary() {
    [[ -x "$PROMETHEUS_BIN" ]] && return 0
    die "$PROMETHEUS_BIN not found: install the Debian package (as root: apt-get update && \
apt-get install -y prometheus), or set PROMETHEUS_BIN to a prometheus 2.x binary"
}

# Prints our pid if running; clears a stale pid file. The command line must name our config:
# after a reboot the pid may belong to an unrelated process (or the package's own prometheus).
our_pid() {
    local pid args
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && args="$(ps -ww -o args= -p "$pid" 2>/dev/null)" \
            && [[ "$args" == *"--config.file=$CONFIG"* ]]; then
        echo "$pid"
        return 0
    fi
    rm -f "$PID_FILE"
    return 1
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

# Who holds the port, for the error message (ss needs root to name other users' processes).
port_holder() {
    local line pid
    line="$(ss -ltnpH "sport = :$PORT" 2>/dev/null | head -n 1 || true)"
    pid="$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' <<<"$line")"
    if [[ -n "$pid" ]]; then
        echo "pid $pid: $(ps -ww -o args= -p "$pid" 2>/dev/null || echo '?')"
    else
        echo "another process"
    fi
}

ready() { curl -fsS --max-time 2 "$URL/-/ready" >/dev/null 2>&1; }

# The address a running instance was started with (it may differ from this shell's env).
running_address() {
    ps -ww -o args= -p "$1" 2>/dev/null | sed -n 's/.*--web.listen-address=\([^ ]*\).*/\1/p'
}

cmd_start() {
    local pid holder
    if pid="$(our_pid)"; then
        log "already running (pid $pid) at http://$(running_address "$pid")"
        return 0
    fi
    require_binary
    if port_open; then
        holder="$(port_holder)"
        # The Debian package's postinst enables and starts its own prometheus (all interfaces,
        # :9090, /etc/prometheus/prometheus.yml) on systems with systemd; it does not scrape us.
        if [[ "$holder" == *prometheus* ]]; then
            die "$HOST:$PORT is taken by $holder
  That is most likely the Debian package's own service, which does not scrape shopstream.
  Either stop it:      systemctl disable --now prometheus   (or: service prometheus stop)
  or use another port: PROMETHEUS_PORT=9091 bash deploy/prometheus/prometheus.sh start
  (then point Grafana's datasource at that port)."
        fi
        die "$HOST:$PORT is already in use by $holder; set PROMETHEUS_PORT to a free port"
    fi
    mkdir -p "$DATA_DIR"
    # setsid + nohup: our own session, so the end of the calling shell or `make` does not stop
    # it. The inner bash writes its pid before exec'ing prometheus (same pid).
    # shellcheck disable=SC2016  # $$/$1/$@ are for the inner bash
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
        "$PROMETHEUS_BIN" \
        "--config.file=$CONFIG" \
        "--storage.tsdb.path=$DATA_DIR" \
        "--storage.tsdb.retention.time=$RETENTION" \
        "--web.listen-address=$HOST:$PORT" \
        "--web.external-url=$URL/" \
        </dev/null >>"$LOG_FILE" 2>&1 &
    local _ deadline=$((SECONDS + START_TIMEOUT))
    for _ in {1..50}; do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
    printf 'prometheus.sh: waiting for %s/-/ready ' "$URL"
    until ready; do
        if ! our_pid >/dev/null; then
            echo " exited"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "prometheus died during startup (log: $LOG_FILE)"
        fi
        if ((SECONDS >= deadline)); then
            echo " timeout"
            tail -n 20 "$LOG_FILE" >&2 || true
            cmd_stop >/dev/null
            die "not ready after ${START_TIMEOUT}s (log: $LOG_FILE)"
        fi
        printf '.'
        sleep 0.5
    done
    echo " ready"
    log "running (pid $(cat "$PID_FILE")) at $URL — targets: $URL/targets, data: $DATA_DIR"
}

cmd_stop() {
    local pid deadline
    if ! pid="$(our_pid)"; then
        log "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    # Not our child: poll until it is gone. SIGTERM lets it close the TSDB head cleanly.
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "no exit after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid="$(our_pid)"; then
        URL="http://$(running_address "$pid")"
        if ready; then echo "prometheus running (pid $pid) at $URL, ready"
        else echo "prometheus running (pid $pid) at $URL, not ready yet"; fi
    else
        echo "prometheus stopped"
    fi
}

cmd_check() {
    [[ -x "$PROMTOOL_BIN" ]] || die "$PROMTOOL_BIN not found (it comes with the prometheus package)"
    "$PROMTOOL_BIN" check config "$CONFIG"
}

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    check) cmd_check ;;
    -h|--help|help) usage 0 ;;
    *) usage 2 >&2 ;;
esac

#!/usr/bin/env bash
# `make run`: the local stack (Kafka + the four services), Prometheus when its Debian package is
# installed, then the simulated social-commerce day with its live view. Everything started here is
# stopped on exit — also on Ctrl-C — unless KEEP=1 leaves the stack running for the CLI.
#
#   deploy/run.sh [shopstream-sim options]     e.g. --duration 60 --rate 3 --seed 7
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}

cleanup() {
    local status=$?
    if [ -n "${KEEP:-}" ]; then
        echo "KEEP=1: the stack stays up (stop it with: make stop)"
    else
        echo "stopping the stack"
        $UV run --frozen shopstream down >/dev/null 2>&1 || true
        bash deploy/prometheus/prometheus.sh stop >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT
# The simulator gets Ctrl-C too and finishes cleanly; this shell then leaves through cleanup.
trap 'exit 130' INT TERM

$UV run --frozen shopstream up
if command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; then
    if bash deploy/prometheus/prometheus.sh start; then
        echo "Prometheus scrapes every service: http://127.0.0.1:${PROMETHEUS_PORT:-9090}"
    fi
else
    echo "Prometheus is not installed (apt-get install prometheus): metrics stay on :9101-:9104"
fi
$UV run --frozen shopstream-sim "$@"

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

# The simulated day lasts minutes, so the sandbox carrier's pick-up and transit (an hour and two
# days in commerce's settings) take seconds here, with more late and lost parcels than a real
# carrier so a short day shows them (tools/simulator/README.md). Set any of them to override.
export SHOPSTREAM_COMMERCE_CARRIER_PICKUP_S="${SHOPSTREAM_COMMERCE_CARRIER_PICKUP_S:-3}"
export SHOPSTREAM_COMMERCE_CARRIER_TRANSIT_S="${SHOPSTREAM_COMMERCE_CARRIER_TRANSIT_S:-10}"
export SHOPSTREAM_COMMERCE_CARRIER_PROMISE_S="${SHOPSTREAM_COMMERCE_CARRIER_PROMISE_S:-15}"
export SHOPSTREAM_COMMERCE_CARRIER_LATE_BY_S="${SHOPSTREAM_COMMERCE_CARRIER_LATE_BY_S:-10}"
export SHOPSTREAM_COMMERCE_CARRIER_LOST_SHARE="${SHOPSTREAM_COMMERCE_CARRIER_LOST_SHARE:-0.02}"
export SHOPSTREAM_COMMERCE_CARRIER_LATE_SHARE="${SHOPSTREAM_COMMERCE_CARRIER_LATE_SHARE:-0.08}"
export SHOPSTREAM_COMMERCE_DELIVERY_PROMISE_S="${SHOPSTREAM_COMMERCE_DELIVERY_PROMISE_S:-30}"
# Sellers must ship within 20 s of payment (two days in commerce), so the simulator's planted
# late shipper can let a ship-by pass and be judged for it within the day.
export SHOPSTREAM_COMMERCE_SHIP_WITHIN_S="${SHOPSTREAM_COMMERCE_SHIP_WITHIN_S:-20}"
# A storage day lasts 20 s: catalog charges every 20 s (daily in catalog's settings) at a fee
# per unit and real day of 2 x 86,400 / 20 = 8,640, so each charge costs what a day of storage
# does (2 per unit) and platform sellers see storage fees on their ledgers within the day.
export SHOPSTREAM_CATALOG_STORAGE_CHARGE_INTERVAL_S="${SHOPSTREAM_CATALOG_STORAGE_CHARGE_INTERVAL_S:-20}"
export SHOPSTREAM_CATALOG_STORAGE_FEE_PER_UNIT_DAY_MINOR="${SHOPSTREAM_CATALOG_STORAGE_FEE_PER_UNIT_DAY_MINOR:-8640}"
$UV run --frozen shopstream up
if command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; then
    if bash deploy/prometheus/prometheus.sh start; then
        echo "Prometheus scrapes every service: http://127.0.0.1:${PROMETHEUS_PORT:-9090}"
    fi
else
    echo "Prometheus is not installed (apt-get install prometheus): metrics stay on :9101-:9104"
fi
$UV run --frozen shopstream-sim "$@"

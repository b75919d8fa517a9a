#!/usr/bin/env bash
# A throwaway local PostgreSQL (Debian's postgresql package) for tests and `make run`.
# Listens on 127.0.0.1:${PGPORT:-5433} with trust auth, so it must never be exposed beyond
# loopback. State lives under .run/postgres, except as root: the server then runs as the
# postgres user, who may not be able to enter the checkout (a clone in a 0700 temp folder), so
# the data goes to /var/tmp/shopstream-postgres/<hash of this checkout>.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
run_dir="${SHOPSTREAM_RUN_DIR:-$root/.run}"
if [[ "$(id -u)" == 0 ]]; then
  state="${SHOPSTREAM_PG_STATE:-/var/tmp/shopstream-postgres/$(printf '%s' "$run_dir" | sha1sum | cut -c1-12)}"
else
  state="$run_dir/postgres"
fi
data="$state/data"
port="${PGPORT:-5433}"

pg_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$found" ]] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  echo "$found"
}

# initdb and postgres refuse to run as root; run them as the postgres user then.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [[ -f "$data/postmaster.pid" ]] && as_owner "$(pg_bin)/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  if running; then echo "postgres already running on 127.0.0.1:$port"; return; fi
  local bin; bin="$(pg_bin)"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    mkdir -p "$data"
    [[ "$(id -u)" == 0 ]] && chown -R postgres:postgres "$state"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  echo "postgres running on 127.0.0.1:$port (user postgres, trust auth)"
}

stop() {
  if running; then as_owner "$(pg_bin)/pg_ctl" -D "$data" -m fast -w stop >/dev/null; echo "postgres stopped"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "postgres: running"; else echo "postgres: stopped"; fi ;;
  wipe) stop; rm -rf "$state"; echo "postgres data removed" ;;
  *) echo "usage: $0 start|stop|status|wipe" >&2; exit 2 ;;
esac

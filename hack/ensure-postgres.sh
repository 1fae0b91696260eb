#!/usr/bin/env bash
# Prints the DSN of a PostgreSQL server the tests can use, starting one if needed:
#   1. MODELPLANE_TEST_POSTGRES_DSN if set;
#   2. a server already answering on 127.0.0.1:5432 (user postgres, trust auth);
#   3. else a private cluster (initdb + pg_ctl) in a temporary directory on port 55432,
#      installing Debian's postgresql package first if it is missing.
# Diagnostics go to stderr; only the DSN goes to stdout.
set -euo pipefail

if [ -n "${MODELPLANE_TEST_POSTGRES_DSN:-}" ]; then
  echo "$MODELPLANE_TEST_POSTGRES_DSN"
  exit 0
fi

default="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
if command -v psql >/dev/null 2>&1 && psql "$default" -Atc 'select 1' >/dev/null 2>&1; then
  echo "$default"
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "ensure-postgres: installing postgresql (Debian package)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

port=55432
dir=${MODELPLANE_PG_DIR:-/tmp/modelplane-pg}
dsn="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
if "$bindir/pg_isready" -h 127.0.0.1 -p "$port" >/dev/null 2>&1; then
  echo "$dsn"
  exit 0
fi

# initdb refuses to run as root: use the postgres system user when we are root.
run() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  run "$bindir/initdb" -D "$dir" -U postgres --auth=trust >&2
fi
run "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" -w start >&2
echo "$dsn"

#!/usr/bin/env bash
# Soak of several `madoguchi serve` instances on one PostgreSQL (issue 12):
# tests/pg_soak.rs (ignored by a plain `cargo test`). Two instances behind a
# loopback round-robin, the fake Bot Framework, 200 conversations for 60 s,
# 20 times kill -9 of a random instance (restarted), then the checks and the
# numbers (throughput and p99 with one and two instances on PostgreSQL and
# one on SQLite, failover time).
#
# Uses MADOGUCHI_TEST_PG when set (a role that may create databases);
# otherwise starts a throwaway cluster like .ci/run (needs root and the
# Debian postgresql package). Sizes: SOAK_CONVERSATIONS, SOAK_SECONDS,
# SOAK_KILLS, SOAK_BENCH_SECONDS. SOAK_PROFILE=release builds optimised
# (numbers closer to production; a longer build).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${MADOGUCHI_TEST_PG:-}" ]; then
  pg_bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)")
  if [ ! -x "$pg_bin/initdb" ]; then
    echo "soak-pg: set MADOGUCHI_TEST_PG, or install Debian's postgresql package for a throwaway cluster" >&2
    exit 1
  fi
  pg_dir=$(mktemp -d /tmp/madoguchi-soak-pg.XXXXXX)
  chown postgres:postgres "$pg_dir"
  pg_port=54329
  while (exec 3<>"/dev/tcp/127.0.0.1/$pg_port") 2>/dev/null; do pg_port=$((pg_port + 1)); done
  trap 'runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --locale=C \
    >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; exit 1; }
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $pg_port -k $pg_dir -F -c max_connections=300" start >/dev/null \
    || { cat "$pg_dir/server.log" >&2; exit 1; }
  export MADOGUCHI_TEST_PG="postgres://postgres@127.0.0.1:$pg_port/postgres"
fi

profile=()
if [ "${SOAK_PROFILE:-}" = "release" ]; then profile=(--release); fi
cargo test "${profile[@]}" --test pg_soak -- --ignored --nocapture

#!/usr/bin/env bash
# Webhook ingest (W2) and subscription fan-out (W3) against the release binary, on PostgreSQL
# (a fresh database, dropped afterwards). Prints the figures; BENCHMARKS.md records them.
#
#   bench/live.sh                                   # 5,000 events; 1,000 and 10,000 subscribers
#   EVENTS=500 SUBSCRIBERS=100 ROUNDS=3 bench/live.sh   # the smoke run of .ci/run
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/live.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-5000}"
CONCURRENCY="${CONCURRENCY:-32}"
SUBSCRIBERS="${SUBSCRIBERS:-1000,10000}"
ROUNDS="${ROUNDS:-20}"
ADMIN_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NAME="userhub_bench_live_$$"
PROFILE="${PROFILE:-release}"

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin userhub --example bench_live
  DIR=target/release
else
  cargo build --quiet --bin userhub --example bench_live
  DIR=target/debug
fi

psql "$ADMIN_URL" -qc "CREATE DATABASE \"$NAME\"" >/dev/null
cleanup() { psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$NAME\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
DATABASE_URL="${ADMIN_URL%/*}/$NAME"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%d)"
"$DIR/examples/bench_live" --server "$DIR/userhub" --database-url "$DATABASE_URL" \
  --events "$EVENTS" --concurrency "$CONCURRENCY" --subscribers "$SUBSCRIBERS" --rounds "$ROUNDS"

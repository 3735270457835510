#!/usr/bin/env bash
# Sync benchmark (W4): a full sync of N Clerk users (default 100,000) from the Clerk emulator
# into a fresh database, then a rerun with nothing changed, on SQLite and on PostgreSQL.
# Writes its table into BENCHMARKS.md between the sync markers.
#
#   bench/sync.sh                      # 100,000 users, SQLite and PostgreSQL
#   USERS=10000 bench/sync.sh          # fewer users
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/sync.sh
#   USERHUB_BIN=/tmp/userhub-old WRITE=0 bench/sync.sh   # another build; BENCHMARKS.md untouched
#   USERS=2000 RUNS=1 WRITE=0 USERHUB_BIN=target/debug/userhub bench/sync.sh   # .ci/run's smoke run
set -euo pipefail
cd "$(dirname "$0")/.."

USERS="${USERS:-100000}"
PORT="${EMULATOR_PORT:-18401}"
ADMIN_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SECRET="sk_test_bench_$$"
WORK="$(mktemp -d)"

# USERHUB_BIN: a binary built already (an earlier commit's, to compare); else this tree's.
if [ -n "${USERHUB_BIN:-}" ]; then
  BIN="$USERHUB_BIN"
else
  cargo build --release --quiet
  BIN=target/release/userhub
fi

cleanup() {
  [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "seeding the Clerk emulator with $USERS users..."
CLERK_SECRET_KEY="$SECRET" "$BIN" clerk-emulator --emulator-listen "127.0.0.1:$PORT" \
  --seed-users "$USERS" >"$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 1 600); do
  curl -sf -H "authorization: Bearer $SECRET" "http://127.0.0.1:$PORT/v1/users/count" >/dev/null 2>&1 && break
  sleep 0.5
done

now() { date +%s.%N; }

# Runs one sync and prints "seconds created updated deactivated".
run_sync() {
  local database_url=$1 start end line
  start=$(now)
  line=$(DATABASE_URL="$database_url" CLERK_API_URL="http://127.0.0.1:$PORT/v1" \
    CLERK_SECRET_KEY="$SECRET" RUST_LOG=warn "$BIN" sync 2>/dev/null | tail -n 1)
  end=$(now)
  echo "$(echo "$end - $start" | bc) $(echo "$line" | sed -E 's/.*: ([0-9]+) seen, ([0-9]+) created, ([0-9]+) updated, ([0-9]+) deactivated/\2 \3 \4/')"
}

RUNS="${RUNS:-3}"
spread() { # DIGITS values... -> "median (min–max)"
  python3 -c 'import sys, statistics as s; d = int(sys.argv[1]); v = [float(x) for x in sys.argv[2:]]; print(f"{s.median(v):.{d}f} ({min(v):.{d}f}–{max(v):.{d}f})")' "$@"
}

rows=()
# measure NAME FRESH_URL_COMMAND: RUNS times a fresh database (FRESH_URL_COMMAND prints its
# URL), a first sync and a no-change rerun.
measure() {
  local name=$1 fresh=$2 firsts=() reruns=() rates=() updated=0 first_s created rerun_s rerun_updated database_url
  for run in $(seq 1 "$RUNS"); do
    database_url=$($fresh "$run")
    read -r first_s created _ _ <<<"$(run_sync "$database_url")"
    read -r rerun_s _ rerun_updated _ <<<"$(run_sync "$database_url")"
    firsts+=("$first_s"); reruns+=("$rerun_s"); rates+=("$(echo "$created / $first_s" | bc)")
    updated=$((updated + rerun_updated))
    if [ "$created" != "$USERS" ] || [ "$rerun_updated" != 0 ]; then
      echo "FAIL: $name run $run created $created of $USERS users and the rerun updated $rerun_updated" >&2
      exit 1
    fi
    echo "$name, run $run: first sync ${first_s}s ($created created), rerun ${rerun_s}s ($rerun_updated updated)"
  done
  rows+=("| $name | $USERS | $(spread 1 "${firsts[@]}") s | $(spread 0 "${rates[@]}") | $(spread 2 "${reruns[@]}") s | $updated |")
}

fresh_sqlite() { echo "sqlite://$WORK/bench-$1.db?mode=rwc"; }
fresh_postgres() {
  PGOPTIONS='-c client_min_messages=warning' psql -q "$ADMIN_URL" \
    -c "DROP DATABASE IF EXISTS userhub_bench_sync WITH (FORCE)" -c "CREATE DATABASE userhub_bench_sync" >/dev/null
  echo "${ADMIN_URL%/*}/userhub_bench_sync"
}
# The same over PostgreSQL's Unix socket, when there is one: sqlx 0.9.0 leaves Nagle's
# algorithm on for TCP, which costs a statement larger than the socket's send buffer a delayed
# ACK (about 40 ms); the socket shows what the sync costs without that (BENCHMARKS.md, W4).
socket_dir="${PG_SOCKET_DIR:-/var/run/postgresql}"
fresh_postgres_socket() {
  fresh_postgres >/dev/null
  echo "postgres://postgres@localhost/userhub_bench_sync?host=$socket_dir"
}

measure "SQLite" fresh_sqlite
if pg_isready -d "$ADMIN_URL" -t 3 >/dev/null 2>&1; then
  measure "PostgreSQL" fresh_postgres
  if [ -S "$socket_dir/.s.PGSQL.5432" ]; then
    measure "PostgreSQL, Unix socket" fresh_postgres_socket
  fi
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS userhub_bench_sync WITH (FORCE)" >/dev/null
else
  echo "PostgreSQL is not reachable at $ADMIN_URL: measured SQLite only"
fi

table=$(cat <<TABLE
Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); $(basename "$(dirname "$BIN")") build; PostgreSQL $(psql -Atc 'SHOW server_version' "$ADMIN_URL" 2>/dev/null || echo "not reached"); emulator and database on the same machine; $RUNS runs each, a fresh database every run; medians (min–max).

| database | Clerk users | first sync | users/s | no-change rerun | rows updated by the reruns |
| --- | --- | --- | --- | --- | --- |
$(printf '%s\n' "${rows[@]}")
TABLE
)
if [ "${WRITE:-1}" = 0 ]; then
  printf '%s\n' "$table"
  exit 0
fi
python3 bench/section.py sync 'W4: sync of Clerk users (`bench/sync.sh`)' "$table"

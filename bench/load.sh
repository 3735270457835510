#!/usr/bin/env bash
# The mixed load test (issue 8): 256 clients for 60 s against the release binary on PostgreSQL
# (a fresh database, dropped afterwards): pages of users with relations, `me`, organisations,
# signed webhooks and mutations through the embedded Clerk emulator. Fails on any error or any
# acknowledged write missing from the database; prints the latency percentiles and writes them
# to BENCHMARKS.md.
#
#   bench/load.sh                                       # 60 s, 256 clients, into BENCHMARKS.md
#   PROFILE=debug SECONDS_TO_RUN=10 WRITE=0 bench/load.sh   # the smoke run of .ci/run
#   USERHUB_BIN=/tmp/userhub-old WRITE=0 bench/load.sh  # another build; BENCHMARKS.md untouched
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-256}"
SECONDS_TO_RUN="${SECONDS_TO_RUN:-60}"
ADMIN_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NAME="userhub_bench_load_$$"
PROFILE="${PROFILE:-release}"

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin userhub --example bench_load
  DIR=target/release
else
  cargo build --quiet --bin userhub --example bench_load
  DIR=target/debug
fi
SERVER="${USERHUB_BIN:-$DIR/userhub}"

cleanup() { psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$NAME\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
psql "$ADMIN_URL" -qc "CREATE DATABASE \"$NAME\"" >/dev/null
DATABASE_URL="${ADMIN_URL%/*}/$NAME"

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "machine: $machine; $(date -u +%Y-%m-%d); $PROFILE build; $CLIENTS clients for $SECONDS_TO_RUN s"
out="$(mktemp)"
status=0
"$DIR/examples/bench_load" --server "$SERVER" --database-url "$DATABASE_URL" \
  --clients "$CLIENTS" --seconds "$SECONDS_TO_RUN" | tee "$out" || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAIL: the load test saw errors or lost writes" >&2
  exit "$status"
fi
if [ "${WRITE:-1}" = 0 ]; then
  exit 0
fi

table="$(python3 - "$out" "$machine" "$PROFILE" "$(psql "$ADMIN_URL" -Atc 'SHOW server_version')" "$(git rev-parse --short HEAD)" <<'PY'
import re, sys, datetime
path, machine, profile, pg, commit = sys.argv[1:]
lines = open(path).read().splitlines()
summary = next(line for line in lines if line.startswith("LOAD: "))
m = re.match(r"LOAD: (\d+) s, (\d+) clients: (\d+) requests, (\d+) req/s, (\d+) errors, (\d+) lost writes \((\d+) acknowledged webhooks, (\d+) invitations, (\d+) users renamed.*p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms; server RSS ([\d.]+) MiB", summary)
secs, clients, requests, rps, errors, lost, hooks, invites, renamed, p50, p99, top, rss = m.groups()
print(f"Measured {datetime.date.today().isoformat()} on {machine}; {profile} build {commit}; PostgreSQL {pg} over TCP; load generator on the same machine.")
print()
print(f"{clients} clients for {secs} s: **{requests} requests ({rps} req/s), {errors} errors, {lost} lost writes** "
      f"(acknowledged and then found in the database: {hooks} webhook users, {invites} invitations, the last name of {renamed} renamed users); "
      f"latency p50 {p50} ms, **p99 {p99} ms**, max {top} ms; server RSS at the end {rss} MiB.")
print()
print("| request | share | count | p50 ms | p99 ms | max ms |")
print("| --- | --- | --- | --- | --- | --- |")
shares = {"users page": "50 %", "me": "20 %", "organisations": "5 %", "webhook": "15 %", "updateUser": "10 % (clients owning a user)", "inviteUser": "10 % (the other clients)"}
for line in lines:
    k = re.match(r"LOAD (.+?): (\d+) requests, p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", line)
    if k and not line.startswith("LOAD: "):
        print(f"| {k[1]} | {shares.get(k[1], '')} | {k[2]} | {k[3]} | {k[4]} | {k[5]} |")
PY
)"
echo
echo "$table"
python3 bench/section.py load 'Mixed load (`bench/load.sh`)' "$table"

#!/usr/bin/env bash
# The mixed load test (issue 8): 256 clients for 60 s against the release binary on PostgreSQL
# (a fresh database, dropped afterwards): pages of users with relations, `me`, organisations,
# signed webhooks and mutations through the embedded Clerk emulator. Fails on any error or any
# acknowledged write missing from the database; prints the latency percentiles and writes them
# to BENCHMARKS.md.
#
#   bench/load.sh                                       # 3 runs of 60 s, 256 clients, medians
#                                                       # (min–max) into BENCHMARKS.md
#   PROFILE=debug SECONDS_TO_RUN=10 RUNS=1 WRITE=0 bench/load.sh   # the smoke run of .ci/run
#   USERHUB_BIN=/tmp/userhub-old WRITE=0 bench/load.sh  # another build; BENCHMARKS.md untouched
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-256}"
SECONDS_TO_RUN="${SECONDS_TO_RUN:-60}"
ADMIN_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NAME="userhub_bench_load_$$"
PROFILE="${PROFILE:-release}"
RUNS="${RUNS:-3}"

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
# Without TLS, as W1: on loopback sqlx's default sslmode=prefer encrypts for nothing.
DATABASE_URL="${ADMIN_URL%/*}/$NAME?sslmode=disable"

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "machine: $machine; $(date -u +%Y-%m-%d); $PROFILE build; $CLIENTS clients for $SECONDS_TO_RUN s; $RUNS runs"
out="$(mktemp)"
for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS"
  # Each run starts from an empty database, so every run serves the same data.
  cleanup
  psql "$ADMIN_URL" -qc "CREATE DATABASE \"$NAME\"" >/dev/null
  status=0
  "$DIR/examples/bench_load" --server "$SERVER" --database-url "$DATABASE_URL" \
    --clients "$CLIENTS" --seconds "$SECONDS_TO_RUN" | tee -a "$out" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "FAIL: the load test saw errors or lost writes" >&2
    exit "$status"
  fi
done
if [ "${WRITE:-1}" = 0 ]; then
  exit 0
fi

table="$(python3 - "$out" "$machine" "$PROFILE" "$(psql "$ADMIN_URL" -Atc 'SHOW server_version')" "$(git rev-parse --short HEAD)" <<'PY'
import re, statistics, sys, datetime
path, machine, profile, pg, commit = sys.argv[1:]
runs, current = [], None
for line in open(path).read().splitlines():
    m = re.match(r"LOAD: (\d+) s, (\d+) clients: (\d+) requests, (\d+) req/s, (\d+) errors, (\d+) lost writes \((\d+) acknowledged webhooks, (\d+) invitations, (\d+) users renamed.*p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms; server RSS ([\d.]+) MiB", line)
    if m:
        current = {"summary": m.groups(), "kinds": []}
        runs.append(current)
        continue
    k = re.match(r"LOAD (.+?): (\d+) requests, p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", line)
    if k and current is not None:
        current["kinds"].append(k.groups())
def spread(values, fmt="{:.1f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"
column = lambda i: [float(run["summary"][i]) for run in runs]
secs, clients = runs[0]["summary"][0], runs[0]["summary"][1]
errors, lost = sum(int(r["summary"][4]) for r in runs), sum(int(r["summary"][5]) for r in runs)
print(f"Measured {datetime.date.today().isoformat()} on {machine}; {profile} build {commit}; PostgreSQL {pg} over TCP without TLS; load generator on the same machine; {len(runs)} runs, each on a fresh database, figures are medians (min–max) over the runs.")
print()
print(f"{clients} clients for {secs} s: **{spread(column(3), '{:.0f}')} req/s, {errors} errors and {lost} lost writes in all runs**; "
      f"latency p50 {spread(column(9))} ms, **p99 {spread(column(10))} ms**, max {spread(column(11))} ms; server RSS at the end {spread(column(12))} MiB. "
      f"Acknowledged and then found in the database, per run: {', '.join(r['summary'][6] for r in runs)} webhook users; "
      f"{', '.join(r['summary'][7] for r in runs)} invitations; the last name of {', '.join(r['summary'][8] for r in runs)} renamed users.")
print()
print("The run with the median p99, by request:")
print()
print("| request | share | count | p50 ms | p99 ms | max ms |")
print("| --- | --- | --- | --- | --- | --- |")
median_run = sorted(runs, key=lambda r: float(r["summary"][10]))[len(runs) // 2]
shares = {"users page": "50 %", "me": "20 %", "organisations": "5 %", "webhook": "15 %", "updateUser": "10 % (clients owning a user)", "inviteUser": "10 % (the other clients)"}
for kind, count, p50, p99, top in median_run["kinds"]:
    print(f"| {kind} | {shares.get(kind, '')} | {count} | {p50} | {p99} | {top} |")
PY
)"
echo
echo "$table"
python3 bench/section.py load 'Mixed load (`bench/load.sh`)' "$table"

#!/usr/bin/env bash
# Webhook ingest (W2) and subscription fan-out (W3) against the release binary, on PostgreSQL
# (a fresh database, dropped afterwards). Prints the figures; BENCHMARKS.md records them. Above
# 12,500 subscribers the run is spread over replicas of the server on the one database, each
# with its own subscriber process (a process may hold 20,000 sockets here).
#
#   bench/live.sh                                   # 5,000 events; 1,000, 10,000 and 50,000 subscribers;
#                                                   # 3 runs; medians (min–max) into BENCHMARKS.md
#   EVENTS=500 SUBSCRIBERS=100 ROUNDS=3 RUNS=1 WRITE=0 bench/live.sh   # the smoke run of .ci/run
#   USERHUB_BIN=/tmp/userhub-old WRITE=0 bench/live.sh  # another build; BENCHMARKS.md untouched
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/live.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS="${EVENTS:-5000}"
CONCURRENCY="${CONCURRENCY:-32}"
SUBSCRIBERS="${SUBSCRIBERS:-1000,10000,50000}"
ROUNDS="${ROUNDS:-20}"
ADMIN_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NAME="userhub_bench_live_$$"
PROFILE="${PROFILE:-release}"
RUNS="${RUNS:-3}"

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin userhub --example bench_live
  DIR=target/release
else
  cargo build --quiet --bin userhub --example bench_live
  DIR=target/debug
fi

cleanup() { psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$NAME\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# Without TLS, as W1: on loopback sqlx's default sslmode=prefer encrypts for nothing.
DATABASE_URL="${ADMIN_URL%/*}/$NAME?sslmode=disable"

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "machine: $machine; $(date -u +%Y-%m-%d)"
SERVER="${USERHUB_BIN:-$DIR/userhub}"
out="$(mktemp)"
for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS"
  # Each run starts from an empty database: W2's deliveries are the same every run.
  cleanup
  psql "$ADMIN_URL" -qc "CREATE DATABASE \"$NAME\"" >/dev/null
  "$DIR/examples/bench_live" --server "$SERVER" --database-url "$DATABASE_URL" \
    --events "$EVENTS" --concurrency "$CONCURRENCY" --subscribers "$SUBSCRIBERS" --rounds "$ROUNDS" | tee -a "$out"
done

# Medians (min–max) over the runs, as BENCHMARKS.md's table.
table="$(python3 - "$out" "$machine" "$PROFILE" "$RUNS" "$EVENTS" "$CONCURRENCY" "$ROUNDS" "$(psql "$ADMIN_URL" -Atc 'SHOW server_version')" <<'PY'
import re, statistics, sys, datetime
path, machine, profile, runs, events, concurrency, rounds, pg = sys.argv[1:]
ingest, fanout, servers = [], {}, {}
for line in open(path):
    m = re.match(r"W2 ingest: .* ([\d.]+) events/s, (\d+) failed, (\d+) written", line)
    if m:
        ingest.append((float(m[1]), int(m[2]), int(m[3])))
    m = re.match(r"W3 fan-out: (\d+) subscribers, (\d+) servers, .*p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms; RSS idle (\d+) KiB, with subscribers (\d+) KiB, ([\d.]+) KiB per subscriber \(([\d.]+) KiB the connection, ([\d.]+) KiB the subscription\)", line)
    if m:
        servers[int(m[1])] = int(m[2])
        fanout.setdefault(int(m[1]), []).append([float(x) for x in m.groups()[2:]])
def spread(values, fmt="{:.1f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"
date = datetime.date.today().isoformat()
print(f"Measured {date} on {machine}; {profile} build; PostgreSQL {pg}; {runs} runs, figures are medians (min–max) over the runs.")
print()
print("| workload | figure | median (min–max) |")
print("| --- | --- | --- |")
if ingest:
    print(f"| W2 ingest, {events} deliveries, {concurrency} clients | events/s | **{spread([r[0] for r in ingest], '{:.0f}')}** |")
    print(f"| | failed, written | {sum(r[1] for r in ingest)} failed, {min(r[2] for r in ingest)}–{max(r[2] for r in ingest)} written of {events} per run |")
for size, rows in sorted(fanout.items()):
    col = list(zip(*rows))
    spread_over = f" over {servers[size]} servers" if servers[size] > 1 else ""
    print(f"| W3, {size:,} subscribers{spread_over}, {rounds} events | delivery p50 / p99 / max, ms | {spread(col[0])} / **{spread(col[1])}** / {spread(col[2])} |")
    print(f"| | RSS idle → with subscribers, MiB | {statistics.median(col[3])/1024:.1f} → {statistics.median(col[4])/1024:.1f} |")
    print(f"| | RSS per subscriber, KiB | **{spread(col[5])}** |")
    print(f"| | of which the WebSocket connection / the subscription, KiB | {spread(col[6])} / {spread(col[7])} |")
PY
)"
echo
echo "$table"
if [ "${WRITE:-1}" = 0 ]; then
  exit 0
fi
python3 bench/section.py live 'W2 and W3: webhook ingest and live fan-out (`bench/live.sh`)' "$table"

#!/usr/bin/env bash
# Every workload of BENCHMARKS.md, one after the other, on this machine's PostgreSQL (and SQLite
# for W4): W1 beside PostGraphile and the pgbench ceiling, memory and cold start (bench/w1.sh),
# W2 webhook ingest and W3 subscription fan-out (bench/live.sh), W4 sync of 100,000 Clerk
# users (bench/sync.sh), the mixed load test (bench/load.sh). Each rewrites its own section of
# BENCHMARKS.md; about 40 minutes (38 on 2026-12-07).
#
#   bench/all.sh
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/all.sh
#   WRITE=0 bench/all.sh          # print the tables, leave BENCHMARKS.md as it is
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin userhub --example bench_live --example bench_load
export USERHUB_BIN="${USERHUB_BIN:-target/release/userhub}"
bench/w1.sh
bench/live.sh
bench/sync.sh
bench/load.sh

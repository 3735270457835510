#!/usr/bin/env bash
# W1 (a page of users) and W1b (many different pages while users change): userhub against
# PostGraphile 5 and the pgbench ceiling, on PostgreSQL.
# Installs what it needs (wrk and pgbench from Debian, Node 22 and PostGraphile 5 from npm into
# bench/peer/), builds userhub in release mode, and runs bench/w1.py; see its docstring.
#
#   bench/w1.sh                       # the full run; writes BENCHMARKS.md's W1 and W1b sections
#   VARIED=0 bench/w1.sh              # W1 alone
#   SMOKE=1 PROFILE=debug bench/w1.sh # a few seconds a workload, no timing, nothing written
#   USERHUB_BASELINE_BIN=/tmp/userhub-old USERHUB_BASELINE_LABEL=abc1234 bench/w1.sh
#                                     # also an earlier build, interleaved: before/after ratios
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v pgbench >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x bench/peer/node_modules/.bin/node ] || [ ! -d bench/peer/node_modules/postgraphile ]; then
  (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
fi

# USERHUB_BIN names a binary built already (CI passes the one cargo test built).
if [ -z "${USERHUB_BIN:-}" ]; then
  if [ "${PROFILE:-release}" = release ]; then
    cargo build --release --quiet --bin userhub
    export USERHUB_BIN=target/release/userhub
  else
    cargo build --quiet --bin userhub
    export USERHUB_BIN=target/debug/userhub
  fi
fi
python3 bench/w1.py
# W1b: many different pages while users change (bench/w1b.py).
if [ "${VARIED:-1}" = 1 ]; then
  python3 bench/w1b.py
fi

#!/usr/bin/env bash
# CDC commit→visible latency of `refresh_mode: changes` (PostgreSQL logical replication into the duckdb
# accelerator): a throwaway PostgreSQL (tests/e2e/lib/postgres.mjs), spiced following one table, then SAMPLES
# single-row INSERTs, each committed by one long-lived psql session and timed until a query on spiced sees the
# row (polled every millisecond). Prints p50 and p99; nothing asserts on them.
#
#   bench/cdc_latency.sh BUILD [SAMPLES]      e.g. bench/cdc_latency.sh build 200
#
# Prints one line: `cdc commit->visible latency: p50 X ms, p99 Y ms (N samples, duckdb memory)`.
# Needs PostgreSQL's server binaries and node (scripts/deps.sh); runs the latency test of tests/e2e/cdc.test.mjs.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: bench/cdc_latency.sh BUILD [SAMPLES]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
[ -d "$BUILD" ] || BUILD="$ROOT/$BUILD"
SPICED=$(cd "$BUILD" && pwd)/bin/spiced
[ -x "$SPICED" ] || { echo "no spiced in $BUILD/bin (build first)" >&2; exit 1; }
export SPICED CDC_LATENCY_SAMPLES=${2:-200}

cd "$ROOT/tests/e2e"
out=$(node --test --test-name-pattern='latency' cdc.test.mjs 2>&1) || { echo "$out" >&2; exit 1; }
line=$(printf '%s\n' "$out" | grep -o 'cdc commit->visible latency: .*' || true)
[ -n "$line" ] || { echo "$out" >&2; echo "no latency line in the test output" >&2; exit 1; }
echo "$line"

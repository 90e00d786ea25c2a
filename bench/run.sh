#!/usr/bin/env bash
# `make bench`: spicec against embedded DuckDB, side by side in one run (docs/benchmarks.md).
#
#   bench/run.sh BUILD [--quick] [--rows N] [--reps N] [--warmup N] [--match SUBSTRING]
#
# 1. generates (once; cached in bench/data/) a deterministic trips Parquet file with gen_quickstart,
# 2. writes a spicepod with the file accelerated by arrow, accelerated by duckdb (memory) and federated,
# 3. starts BUILD/bin/spiced on free loopback ports in a temporary folder,
# 4. runs BUILD/bin/bench_sql, which waits for /v1/ready and times every query of bench/queries.sql through
#    spiced's /v1/sql and in an embedded DuckDB, interleaved, and prints the table of ratios;
# 5. writes bench/results/latest.md and bench/results/latest.json.
# A slow ratio never fails the run; only a benchmark that could not run does.
set -euo pipefail

usage() { echo "usage: bench/run.sh BUILD [--quick] [--rows N] [--reps N] [--warmup N] [--match SUBSTRING]" >&2; exit 2; }
[ $# -ge 1 ] || usage
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1; shift
[ -d "$BUILD" ] || BUILD="$ROOT/$BUILD"
BUILD=$(cd "$BUILD" && pwd)
BIN="$BUILD/bin"

ROWS=6000000 REPS=5 WARMUP=1 MATCH=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) ROWS=300000 REPS=1 WARMUP=1 ;;
    --rows) ROWS=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --warmup) WARMUP=${2:?}; shift ;;
    --match) MATCH=(--match "${2:?}"); shift ;;
    *) usage ;;
  esac
  shift
done

for exe in spiced bench_sql gen_quickstart; do
  [ -x "$BIN/$exe" ] || { echo "bench: $BIN/$exe is missing (run make build)" >&2; exit 1; }
done

DATA="$ROOT/bench/data/trips-$ROWS"
"$BIN/gen_quickstart" --rows "$ROWS" --only trips "$DATA"
PARQUET="$DATA/trips.parquet"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spicec-bench.XXXXXX")
SPICED_PID=
cleanup() {
  if [ -n "$SPICED_PID" ] && kill -0 "$SPICED_PID" 2>/dev/null; then
    kill -TERM "$SPICED_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SPICED_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPICED_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The results cache is off: the benchmark measures queries, not cache hits (bench_sql also sends
# Cache-Control: no-cache).
cat >"$WORK/spicepod.yaml" <<EOF
version: v1
kind: Spicepod
name: bench
runtime:
  results_cache:
    enabled: false
datasets:
  - from: file:$PARQUET
    name: trips_arrow
    acceleration:
      enabled: true
      engine: arrow
  - from: file:$PARQUET
    name: trips_duckdb
    acceleration:
      enabled: true
      engine: duckdb
      mode: memory
  - from: file:$PARQUET
    name: trips_federated
EOF

read -r HTTP_PORT FLIGHT_PORT < <("$BIN/bench_sql" --free-ports 2 | paste -sd' ')
(cd "$WORK" && exec "$BIN/spiced" --http "127.0.0.1:$HTTP_PORT" --flight "127.0.0.1:$FLIGHT_PORT") \
  >"$WORK/spiced.log" 2>&1 &
SPICED_PID=$!

mkdir -p "$ROOT/bench/results"
if ! "$BIN/bench_sql" --http "127.0.0.1:$HTTP_PORT" --pid "$SPICED_PID" --wait-ready 900 \
    --parquet "$PARQUET" --queries "$ROOT/bench/queries.sql" --reps "$REPS" --warmup "$WARMUP" "${MATCH[@]}" \
    --md "$ROOT/bench/results/latest.md" --json "$ROOT/bench/results/latest.json"; then
  echo "bench: the benchmark did not run; last lines of the spiced log:" >&2
  tail -n 30 "$WORK/spiced.log" >&2
  exit 1
fi
echo
echo "results: bench/results/latest.md, bench/results/latest.json"

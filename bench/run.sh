#!/usr/bin/env bash
# `make bench`: spicec measured side by side with what it is compared against, in one run (docs/benchmarks.md).
#
#   bench/run.sh BUILD [--quick] [--rows N] [--sf SCALE] [--reps N] [--warmup N] [--match SUBSTRING] [--only SECTIONS]
#
# Data is prepared once and cached in bench/data/ (git-ignored): the trips Parquet file (gen_quickstart) and the
# TPC-H-shaped tables (gen_tpch). Then each section runs and writes a part into bench/results/parts/:
#   queries  bench/queries.sql on trips through spiced (arrow, duckdb, federated) ÷ embedded DuckDB (bench_sql)
#   tpch     the 22 TPC-H queries through spiced over HTTP and over Flight (arrow, duckdb, sqlite accelerators) ÷
#            embedded DuckDB (bench_sql)
#   tpch_pg  the 22 TPC-H queries on the same tables loaded into PostgreSQL (and MariaDB): spiced federated and
#            accelerated (arrow, duckdb, sqlite, postgres) ÷ the same query run directly on the server, every answer
#            checked against direct PostgreSQL's (bench/sections/tpch_pg.mjs)
#   http     cached and uncached point queries/s with wrk ÷ an empty handler (bench/sections/http_rps.mjs)
#   pg       PostgreSQL (a --rows table): load rows/s, one stream and parallel ctid ranges, ÷ the server's own binary
#            COPY (one session, and the same ranges at once), accelerated and federated query time ÷ the
#            same query on PostgreSQL, peak RSS ÷ Arrow size during a full refresh (bench/sections/pg.mjs)
#   mysql    MariaDB load rows/s ÷ `mariadb --batch --quick` (bench/sections/mysql.mjs)
#   flight   DoGet GB/s and HTTP JSON GB/s ÷ loopback TCP GB/s (tools/bench_flight)
#   cdc      PostgreSQL commit → visible latency p50/p99 (bench/cdc_latency.sh)
#   sqlite   sqlite connector load rows/s ÷ the sqlite3 CLI's CSV export (bench/sqlite_load.sh)
# and bench/report.mjs assembles bench/results/latest.{md,json,png}. --quick: small data, one repetition, a
# couple of minutes (CI runs it so that the benchmark cannot rot; nothing asserts on the numbers).
# A slow ratio never fails the run; only a section that could not run does.
set -euo pipefail

usage() { echo "usage: bench/run.sh BUILD [--quick] [--rows N] [--sf SCALE] [--reps N] [--warmup N] [--match SUBSTRING] [--only SECTIONS]" >&2; exit 2; }
[ $# -ge 1 ] || usage
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1; shift
[ -d "$BUILD" ] || BUILD="$ROOT/$BUILD"
BUILD=$(cd "$BUILD" && pwd)
BIN="$BUILD/bin"

ROWS=6000000 SF=1 REPS=5 WARMUP=1 MATCH=() QUICK=0 ONLY="queries tpch tpch_pg http pg mysql flight cdc sqlite"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) ROWS=300000 SF=0.05 REPS=1 WARMUP=1 QUICK=1 ;;
    --rows) ROWS=${2:?}; shift ;;
    --sf) SF=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --warmup) WARMUP=${2:?}; shift ;;
    --match) MATCH=(--match "${2:?}"); shift ;;
    --only) ONLY=${2:?}; shift ;;
    *) usage ;;
  esac
  shift
done
wants() { [[ " $ONLY " == *" $1 "* ]]; }

for exe in spiced bench_sql bench_flight bench_db duckdb_exec gen_quickstart gen_tpch; do
  [ -x "$BIN/$exe" ] || { echo "bench: $BIN/$exe is missing (run make build)" >&2; exit 1; }
done

DATA="$ROOT/bench/data/trips-$ROWS"
"$BIN/gen_quickstart" --rows "$ROWS" --only trips "$DATA"
PARQUET="$DATA/trips.parquet"
TPCH="$ROOT/bench/data/tpch-sf$SF"
if wants tpch || wants tpch_pg; then "$BIN/gen_tpch" --sf "$SF" "$TPCH"; fi

RESULTS="$ROOT/bench/results"
PARTS="$RESULTS/parts"
rm -rf "$PARTS"
mkdir -p "$PARTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spicec-bench.XXXXXX")
SPICED_PID=
stop_spiced() {
  if [ -n "$SPICED_PID" ] && kill -0 "$SPICED_PID" 2>/dev/null; then
    kill -TERM "$SPICED_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SPICED_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPICED_PID" 2>/dev/null || true
  fi
  SPICED_PID=
}
cleanup() { stop_spiced; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts spiced on the spicepod read from stdin, in its own folder under $WORK; sets HTTP_PORT and SPICED_PID.
start_spiced() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  cat >"$dir/spicepod.yaml"
  read -r HTTP_PORT FLIGHT_PORT < <("$BIN/bench_sql" --free-ports 2 | paste -sd' ')
  (cd "$dir" && exec "$BIN/spiced" --http "127.0.0.1:$HTTP_PORT" --flight "127.0.0.1:$FLIGHT_PORT") >"$dir/spiced.log" 2>&1 &
  SPICED_PID=$!
  SPICED_LOG="$dir/spiced.log"
}

# bench_sql against the spiced just started (HTTP_PORT, FLIGHT_PORT); its part is $PARTS/$1.json.
run_bench_sql() {
  local part=$1; shift
  if ! "$BIN/bench_sql" --http "127.0.0.1:$HTTP_PORT" --pid "$SPICED_PID" --wait-ready 1800 --reps "$REPS" \
      --warmup "$WARMUP" "${MATCH[@]}" --json "$PARTS/$part.json" "$@"; then
    echo "bench: section $part did not run; last lines of the spiced log:" >&2
    tail -n 30 "$SPICED_LOG" >&2
    exit 1
  fi
  stop_spiced
}

# The results cache is off wherever queries are timed: the benchmark measures queries, not cache hits (bench_sql
# also sends Cache-Control: no-cache).
if wants queries; then
  echo "== queries: bench/queries.sql on $ROWS trips"
  start_spiced queries <<EOF
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
  run_bench_sql queries --parquet "$PARQUET" --queries "$ROOT/bench/queries.sql"
fi

tpch_pod() { # engine
  printf 'version: v1\nkind: Spicepod\nname: tpch_%s\nruntime:\n  results_cache:\n    enabled: false\ndatasets:\n' "$1"
  for t in nation region part supplier partsupp customer orders lineitem; do
    printf '  - from: file:%s/%s.parquet\n    name: %s\n    acceleration:\n      enabled: true\n      engine: %s\n' \
      "$TPCH" "$t" "$t" "$1"
  done
}
if wants tpch; then
  for engine in arrow duckdb sqlite; do
    echo "== tpch: 22 queries, SF $SF, $engine accelerator"
    tpch_pod "$engine" >"$WORK/tpch_$engine.yaml"
    start_spiced "tpch_$engine" <"$WORK/tpch_$engine.yaml" # a redirect, not a pipe: SPICED_PID stays ours
    run_bench_sql "tpch_$engine" --tables "$TPCH" --label "$engine" --flight "127.0.0.1:$FLIGHT_PORT" \
      --queries "$ROOT/bench/tpch/queries.sql"
  done
fi

export SPICED="$BIN/spiced" SPICEC_BUILD="$BUILD" SPICEC_BENCH_QUICK=$QUICK SPICEC_BENCH_PARTS="$PARTS" SPICEC_BENCH_DATA="$PARQUET" \
  SPICEC_BENCH_ROWS=$ROWS
export SPICEC_BENCH_TPCH="$TPCH" SPICEC_BENCH_SF=$SF SPICEC_BENCH_REPS=$REPS SPICEC_BENCH_WARMUP=$WARMUP SPICEC_BENCH_MATCH="${MATCH[1]:-}"
if wants tpch_pg; then
  echo "== tpch_pg: 22 TPC-H queries, SF $SF, on PostgreSQL and MariaDB: spiced ÷ direct"
  node "$ROOT/bench/sections/tpch_pg.mjs"
fi
if wants http; then
  echo "== http: requests/s with wrk"
  node "$ROOT/bench/sections/http_rps.mjs"
fi
if wants pg; then
  echo "== pg: PostgreSQL load, queries and memory"
  node "$ROOT/bench/sections/pg.mjs"
fi
if wants mysql; then
  echo "== mysql: MariaDB load rate vs the mariadb client"
  node "$ROOT/bench/sections/mysql.mjs"
fi
if wants flight; then
  echo "== flight: DoGet and HTTP JSON throughput vs loopback TCP"
  node "$ROOT/bench/sections/flight.mjs"
fi
if wants cdc; then
  echo "== cdc: PostgreSQL commit -> visible latency"
  node "$ROOT/bench/sections/cdc.mjs"
fi
if wants sqlite; then
  echo "== sqlite: load rate vs the sqlite3 CLI"
  node "$ROOT/bench/sections/sqlite.mjs"
fi

echo
node "$ROOT/bench/report.mjs" "$RESULTS" $([ "$QUICK" = 1 ] && echo --quick)
echo
echo "results: bench/results/latest.md, bench/results/latest.json, bench/results/latest.png"

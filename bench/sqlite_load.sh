#!/usr/bin/env bash
# SQLite load rate: spiced's sqlite connector loading a table (rows/s from its "loaded" log line, the arrow
# accelerator taking the batches) ÷ the sqlite3 CLI exporting the same table (`sqlite3 -csv db 'select * from
# t' >/dev/null`), the native export, measured side by side in one run (issue 4 §6).
#
#   bench/sqlite_load.sh BUILD [ROWS] [REPS]      (defaults: 1000000 rows, 3 repetitions; best of each side)
#
# The table has the columns of a typical fact table: integer key, integer, real, short text, decimal, datetime.
# Prints one line per repetition and a summary: `sqlite load: spiced N rows/s, sqlite3 -csv M rows/s, ratio R`.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: bench/sqlite_load.sh BUILD [ROWS] [REPS]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$1
[ -d "$BUILD" ] || BUILD="$ROOT/$BUILD"
SPICED="$(cd "$BUILD" && pwd)/bin/spiced"
ROWS=${2:-1000000}
REPS=${3:-3}
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI not found (scripts/deps.sh installs it)" >&2; exit 1; }
[ -x "$SPICED" ] || { echo "no spiced at $SPICED" >&2; exit 1; }

DIR=$(mktemp -d /tmp/spicec-bench-sqlite-XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

sqlite3 "$DIR/src.db" <<SQL
CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, price REAL, tag TEXT, amount DECIMAL(12,2), ts DATETIME);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO t SELECT i, i % 50, i * 0.25, 'tag-' || (i % 1000), (i % 100000) / 100.0,
  datetime(1704067200 + i, 'unixepoch') FROM n;
SQL
cat > "$DIR/spicepod.yaml" <<YAML
version: v1
kind: Spicepod
name: bench_sqlite
datasets:
  - from: sqlite:t
    name: t
    params:
      sqlite_file: src.db
    acceleration:
      engine: arrow
YAML

now() { date +%s.%N; }
best_native=0 best_spiced=0
for rep in $(seq 1 "$REPS"); do
  t0=$(now)
  sqlite3 -csv "$DIR/src.db" 'select * from t' >/dev/null
  t1=$(now)
  native=$(echo "$ROWS / ($t1 - $t0)" | bc -l)

  : > "$DIR/spiced.log"
  (cd "$DIR" && exec "$SPICED" --http 127.0.0.1:0 --flight 127.0.0.1:0 >>"$DIR/spiced.log" 2>&1) &
  PID=$!
  line=
  for _ in $(seq 1 600); do
    line=$(grep -m1 'dataset "t" loaded' "$DIR/spiced.log" || true)
    [ -n "$line" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
  [ -n "$line" ] || { echo "spiced did not load the table:" >&2; cat "$DIR/spiced.log" >&2; exit 1; }
  spiced=$(echo "$line" | sed -n 's/.*(\([0-9.]*\) rows\/s.*/\1/p')
  printf 'rep %d: spiced %.0f rows/s, sqlite3 -csv %.0f rows/s\n' "$rep" "$spiced" "$native"
  best_native=$(echo "if ($native > $best_native) $native else $best_native" | bc -l)
  best_spiced=$(echo "if ($spiced > $best_spiced) $spiced else $best_spiced" | bc -l)
done
printf 'sqlite load (%d rows, best of %d): spiced %.0f rows/s, sqlite3 -csv %.0f rows/s, ratio %.2f\n' \
  "$ROWS" "$REPS" "$best_spiced" "$best_native" "$(echo "$best_spiced / $best_native" | bc -l)"

#!/usr/bin/env bash
# Generates the quickstart data into examples/quickstart/data/ (called by `make quickstart` and `make run` as
# `scripts/quickstart-data.sh build/bin`). The data is deterministic: the same bytes on every machine and run.
# Idempotent and fast: gen_quickstart returns at once when its stamp file says the data is already there.
set -euo pipefail
BIN=${1:-build/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$BIN" ] || BIN="$ROOT/$BIN"
GEN="$BIN/gen_quickstart"
[ -x "$GEN" ] || { echo "quickstart-data: $GEN is missing (run make build)" >&2; exit 1; }
exec "$GEN" --rows 300000 "$ROOT/examples/quickstart/data"

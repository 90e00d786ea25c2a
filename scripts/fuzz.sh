#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang into BUILD (default build-fuzz) and runs each
# for FUZZ_SECONDS (default 60) on a copy of its seed corpus plus its saved regressions, in a temporary folder,
# so the repository's corpus never changes. Fails if any target crashes, leaks, times out or runs out of memory;
# the offending inputs are kept in BUILD/fuzz-artifacts/<name>/ and the command to reproduce is printed.
#
#   scripts/fuzz.sh [BUILD] [name ...]        e.g. FUZZ_SECONDS=10 scripts/fuzz.sh build-fuzz pod classify
#
# Extra libFuzzer flags: FUZZ_FLAGS for every target, tests/fuzz/fuzz_<name>.options (one line) for one.
# A crash, once fixed, becomes a regression input: copy it into tests/fuzz/regressions/<name>/, where the unit
# suite replays it (ctest -R unit/replay_<name>).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-build-fuzz}
shift || true
SECONDS_EACH=${FUZZ_SECONDS:-60}
CC=${CC:-clang}
case $(basename "$CC") in
  clang*) ;;
  *) echo "fuzz: libFuzzer needs clang (CC=$CC)" >&2; exit 2 ;;
esac

CC=$CC cmake -S . -B "$BUILD" -DSPICE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" --target fuzz_targets -j "${JOBS:-$(nproc)}"

if [ $# -gt 0 ]; then
  names=("$@")
else
  names=()
  for src in tests/fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    names+=("${n#fuzz_}")
  done
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/spicec-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ARTIFACTS=$ROOT/$BUILD/fuzz-artifacts
failed=()
summary=()

for name in "${names[@]}"; do
  bin=$ROOT/$BUILD/bin/fuzz_$name
  [ -x "$bin" ] || { echo "fuzz: no target $bin" >&2; exit 2; }
  corpus=$WORK/$name/corpus
  out=$WORK/$name/artifacts
  mkdir -p "$corpus" "$out"
  for dir in tests/fuzz/corpus/$name tests/fuzz/regressions/$name; do
    [ -d "$dir" ] && find "$dir" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$corpus/" \;
  done
  opts=()
  [ -f "tests/fuzz/fuzz_$name.options" ] && read -r -a opts < "tests/fuzz/fuzz_$name.options"
  log=$WORK/$name/log
  echo "== fuzz_$name: ${SECONDS_EACH}s, $(find "$corpus" -type f | wc -l) seed inputs"
  status=ok
  # -max_total_time bounds the run; -timeout flags a single input that hangs.
  if ! (cd "$WORK/$name" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=30 -print_final_stats=1 \
          -artifact_prefix="$out/" "${opts[@]}" ${FUZZ_FLAGS:-} "$corpus" >"$log" 2>&1); then
    status=FAILED
  fi
  if compgen -G "$out/*" >/dev/null; then status=FAILED; fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 || true)
  line=$(printf '%-12s %-6s runs=%-9s exec/s=%-7s rss=%sMB  %s' "$name" "$status" "${runs:-?}" "${speed:-?}" \
         "${rss:-?}" "$cov")
  summary+=("$line")
  echo "$line"
  if [ "$status" != ok ]; then
    failed+=("$name")
    mkdir -p "$ARTIFACTS/$name"
    cp "$log" "$ARTIFACTS/$name/fuzz.log"
    cp "$out"/* "$ARTIFACTS/$name/" 2>/dev/null || true
    grep -E -m 20 'ERROR: |runtime error:|SUMMARY: |Test unit written|==[0-9]+==' "$log" || tail -30 "$log"
    echo "   artifacts: $ARTIFACTS/$name/  (reproduce: $bin <file>; once fixed, copy the file into"
    echo "   tests/fuzz/regressions/$name/ so the unit suite replays it)"
  fi
done

echo
echo "fuzz summary (${SECONDS_EACH}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#names[@]} targets ran without a finding"

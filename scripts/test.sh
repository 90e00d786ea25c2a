#!/usr/bin/env bash
# Runs the whole suite: unit tests (cmocka) and end-to-end tests (node:test against a real spiced), all
# registered with ctest. Installs the pinned npm packages the e2e tests use first.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
cd "$BUILD"
# A test that fails is run once more (ctest prints both runs): the machines are shared and an e2e test
# that drives real processes can lose a race with a noisy neighbour. A test that fails twice fails the suite.
ctest --output-on-failure -j "${TEST_JOBS:-2}" --repeat until-pass:2 ${CTEST_ARGS:-}

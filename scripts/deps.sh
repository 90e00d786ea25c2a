#!/usr/bin/env bash
# Installs what the build and the tests need on Debian 12 (as root), then fetches DuckDB.
# Idempotent: a package already present is not reinstalled; DuckDB is checked by checksum.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config libyaml-dev libmicrohttpd-dev libjansson-dev libedit-dev
      libcmocka-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev postgresql libmariadb-dev mariadb-server
      libgrpc-dev libprotobuf-c-dev protobuf-c-compiler curl openssl ca-certificates sqlite3
      unixodbc-dev odbc-postgresql libsqliteodbc wrk gnuplot-nox clang libclang-rt-14-dev bc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm (the e2e tests, the SDK, and fetching DuckDB): any install on the PATH will do; Debian's
# packages otherwise.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2; exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
scripts/fetch-duckdb.sh

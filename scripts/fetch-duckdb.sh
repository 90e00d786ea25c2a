#!/usr/bin/env bash
# Fetches DuckDB 1.4.4 (LTS) from its published npm packages, pinned by version and sha512:
#   libduckdb.so  from @duckdb/node-bindings-linux-<arch>@1.4.4-r.4
#   duckdb.h      from duckdb@1.4.4 (src/duckdb/src/include/duckdb.h)
# into third_party/duckdb/ (git-ignored). DUCKDB_DIR=/path (with include/duckdb.h and lib/libduckdb.so,
# or both files side by side) uses a local install instead and fetches nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=third_party/duckdb
VERSION=1.4.4
if [ -n "${DUCKDB_DIR:-}" ]; then echo "using DUCKDB_DIR=$DUCKDB_DIR"; exit 0; fi
if [ -f "$DEST/.ok-$VERSION" ] && [ -f "$DEST/lib/libduckdb.so" ] && [ -f "$DEST/include/duckdb.h" ]; then exit 0; fi

case "$(uname -m)" in
  x86_64)  BIN_PKG=@duckdb/node-bindings-linux-x64@1.4.4-r.4
           BIN_SHA='sha512-jBTL/WvfwxLToFa/pVHfT6elMtltJGnc3wSuxZD9OfMltit9YUdVFS37vBFQzXMT1Z8OWjtSjMh+zPKxOwHLHA==' ;;
  aarch64) BIN_PKG=@duckdb/node-bindings-linux-arm64@1.4.4-r.4
           BIN_SHA="${DUCKDB_ARM64_SHA512:?set DUCKDB_ARM64_SHA512 to the sha512 integrity of $BIN_PKG (npm view $BIN_PKG dist.integrity)}" ;;
  *) echo "unsupported architecture $(uname -m); set DUCKDB_DIR" >&2; exit 1 ;;
esac
HDR_PKG=duckdb@1.4.4
HDR_SHA='sha512-hEJJ5hyVF0VLj3dmOLpsWrQR0b3d4Ykqtygm6iUXjHJDDnSqg/USKxcb5qvNrOhFYPgktayU6dXCtgPqcmmpog=='

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fetch() { # $1 = package spec, $2 = expected integrity; prints the tarball path
  local f
  f=$(cd "$tmp" && npm pack --silent "$1" 2>/dev/null | tail -n 1)
  local got="sha512-$(openssl dgst -sha512 -binary "$tmp/$f" | base64 -w0)"
  if [ "$got" != "$2" ]; then echo "checksum mismatch for $1: got $got" >&2; exit 1; fi
  echo "$tmp/$f"
}
echo "fetching DuckDB $VERSION ($BIN_PKG, $HDR_PKG)"
bin=$(fetch "$BIN_PKG" "$BIN_SHA")
hdr=$(fetch "$HDR_PKG" "$HDR_SHA")
rm -rf "$DEST"; mkdir -p "$DEST/lib" "$DEST/include"
tar xzf "$bin" -C "$tmp" package/libduckdb.so
mv "$tmp/package/libduckdb.so" "$DEST/lib/"
tar xzf "$hdr" -C "$tmp" package/src/duckdb/src/include/duckdb.h
mv "$tmp/package/src/duckdb/src/include/duckdb.h" "$DEST/include/"
touch "$DEST/.ok-$VERSION"
echo "DuckDB $VERSION in $DEST"

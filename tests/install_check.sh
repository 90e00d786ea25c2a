#!/usr/bin/env bash
# Installs the build into a temporary prefix and checks the result (ctest: install/tree).
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/spiced bin/spice share/man/man1/spiced.1 share/man/man1/spice.1 lib/systemd/system/spiced.service; do
  [ -e "$prefix/$f" ] || { echo "missing $f"; exit 1; }
done
ls "$prefix"/lib*/spicec/libduckdb.so >/dev/null
# The installed daemon finds DuckDB through its own rpath, not the build tree's.
out=$(env -u LD_LIBRARY_PATH "$prefix/bin/spiced" --version)
[ "$out" = "spiced 0.1.0" ] || { echo "unexpected: $out"; exit 1; }
# (ldd's output is captured first: with pipefail, `ldd | grep -q` fails when grep exits before ldd is done.)
libs=$(ldd "$prefix/bin/spiced")
line=$(grep -F "libduckdb.so =>" <<<"$libs" || true)
[[ "$line" == *"=> $prefix/bin/../lib"*"/spicec/libduckdb.so "* ]] || { echo "$libs"; exit 1; }
grep -q '^Type=notify' "$prefix/lib/systemd/system/spiced.service"
echo "install tree ok"

#!/usr/bin/env bash
# portable-lib.sh OUT: `make portable-lib`, the library every package ships, in OUT:
#   libmm_session.so.SOVERSION   the library (with the libmm_session.so link to it)
#   libmm_session.a              the static library
# built for a baseline CPU (PORTABLE=1, see docs/building.md), never for this machine's.
# Packages copy every file of OUT into one folder, links kept, and load libmm_session.so.
#
# Usage: VERSION=x.y.z SOVERSION=a.b scripts/portable-lib.sh OUT
set -euo pipefail

out=$1
level=x86-64-v3
make --no-print-directory build PORTABLE=1 CPU_BASELINE=$level >&2
built=target/portable-$level/release
rm -rf "$out"
mkdir -p "$out"
cp "$built/libmm_session.so" "$out/libmm_session.so.$SOVERSION"
ln -s "libmm_session.so.$SOVERSION" "$out/libmm_session.so"
cp "$built/libmm_session.a" "$out/libmm_session.a"
echo "$out: libmm_session.so.$SOVERSION and libmm_session.a for $level" >&2

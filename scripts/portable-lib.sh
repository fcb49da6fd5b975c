#!/usr/bin/env bash
# portable-lib.sh OUT: `make portable-lib`, the library every package ships, in OUT:
#   libmm_session-x86-64-v2.so, -v3.so, -v4.so,  the library built for each x86-64 level
#   -v4-vnni.so                                  (PORTABLE=1 builds, docs/building.md; v4-vnni
#                                                is v4 with AVX512-VNNI, VBMI and BF16)
#   libmm_session.so.SOVERSION                   the dispatcher (crates/capi/dispatch): loads
#                                                the copy for the best level this CPU runs
#   libmm_session.so                             a link to it
#   libmm_session.a                              the static library, for x86-64-v2 (static
#                                                linking cannot choose a level at load time)
# Packages copy every file of OUT into one folder and load libmm_session.so (or the versioned
# file). Each level is a full build of llama.cpp (a few minutes each, once).
#
# Usage: VERSION=x.y.z SOVERSION=a.b scripts/portable-lib.sh OUT
set -euo pipefail

out=$1
levels=(x86-64-v2 x86-64-v3 x86-64-v4 x86-64-v4-vnni)
for level in "${levels[@]}"; do
    make --no-print-directory build PORTABLE=1 CPU_BASELINE="$level" >&2
done
rm -rf "$out"
mkdir -p "$out"
copies=()
for level in "${levels[@]}"; do
    cp "target/portable-$level/release/libmm_session.so" "$out/libmm_session-$level.so"
    copies+=("$out/libmm_session-$level.so")
done
scripts/dispatch.sh "$out/libmm_session.so.$SOVERSION" "libmm_session.so.$SOVERSION" "${copies[@]}"
ln -s "libmm_session.so.$SOVERSION" "$out/libmm_session.so"
cp "target/portable-${levels[0]}/release/libmm_session.a" "$out/libmm_session.a"
echo "$out: the dispatcher libmm_session.so.$SOVERSION, copies for ${levels[*]}, libmm_session.a for ${levels[0]}" >&2

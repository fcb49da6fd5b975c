#!/usr/bin/env bash
# test-release-dist.sh: `make test-release-dist`. The release tarball (scripts/dist.sh) unpacked
# into a fresh folder, as a packager or CI gets it:
#   - one top folder mm-session-VERSION-linux-x86_64/ holding the expected files, and every
#     file of build/portable-lib in lib/ (same links); every link resolves inside the tree;
#   - the shared library's SONAME is libmm_session.so.SOVERSION;
#   - the CPU levels: the copies for x86-64-v2 and v3 have no AVX-512 code but crc32fast's,
#     which runs only when the CPU has it; with MM_SESSION_CPU=v2 and v3, mm_build_info()
#     names that copy's level; without it, the best copy this CPU runs is loaded;
#   - the .pc and CMake files name no absolute path;
#   - the consumers of scripts/check-install.sh built against the tree only (pkg-config shared
#     and static from a moved copy, CMake shared and static) answer on the generated models.
#
# Usage: scripts/test-release-dist.sh TARBALL BUILD MODEL MMPROJ IMAGE   (VERSION, SOVERSION)
set -euo pipefail

tarball=$1 build=$2 model=$3 mmproj=$4 image=$5
: "${VERSION:?}" "${SOVERSION:?}"
name=mm-session-$VERSION-linux-x86_64
me=test-release-dist
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
test -f "$tarball" || fail "no $tarball (make dist)"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
tar -C "$T" -xzf "$tarball"
tops=$(ls -A "$T")
test "$tops" = "$name" || fail "top folders: $tops (want $name)"
D=$T/$name
echo "$me: $tarball unpacks to $name/ ($(find "$D" -type f | wc -l) files, $(find "$D" -type l | wc -l) links)"

for f in include/mm_session.h include/mm_session.hpp lib/libmm_session.so "lib/libmm_session.so.$SOVERSION" \
    lib/libmm_session.a lib/pkgconfig/mm-session.pc lib/cmake/mm-session/mm-sessionConfig.cmake \
    lib/cmake/mm-session/mm-sessionConfigVersion.cmake README.txt; do
    test -e "$D/$f" || fail "missing $f"
done
test "$(readlink "$D/lib/libmm_session.so")" = "libmm_session.so.$SOVERSION" || fail "libmm_session.so is not a link to libmm_session.so.$SOVERSION"
if [ -d build/portable-lib ]; then
    for f in build/portable-lib/*; do
        g=$D/lib/${f##*/}
        if [ -L "$f" ]; then
            test "$(readlink "$g")" = "$(readlink "$f")" || fail "lib/${f##*/} is not the link of $f"
        else
            cmp -s "$f" "$g" || fail "lib/${f##*/} differs from $f"
        fi
    done
    echo "$me: lib/ holds every file of build/portable-lib: $(cd build/portable-lib && echo *)"
fi
broken=$(find -L "$D" -type l)
test -z "$broken" || fail "links that do not resolve: $broken"
while read -r l; do
    case $(realpath "$l") in "$D"/*) ;; *) fail "$l points outside the tree" ;; esac
done < <(find "$D" -type l)
echo "$me: expected files present; every link resolves inside the tree"

soname=$(readelf -d "$D/lib/libmm_session.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
test "$soname" = "libmm_session.so.$SOVERSION" || fail "SONAME $soname"
echo "$me: SONAME $soname"

if grep -n '/work\|/home\|/tmp\|/usr' "$D"/lib/pkgconfig/*.pc "$D"/lib/cmake/mm-session/*.cmake; then fail "absolute paths above"; fi
prefix=$(PKG_CONFIG_PATH=$D/lib/pkgconfig pkg-config --variable=prefix mm-session)
test "$(realpath "$prefix")" = "$D" || fail "pkg-config prefix $prefix is not the tree"
echo "$me: .pc and CMake files are relocatable (pkg-config prefix: $prefix)"

cat >"$T/build_info.c" <<'EOF'
#include <stdio.h>
#include "mm_session.h"
int main(void) { puts(mm_build_info()); return 0; }
EOF
# shellcheck disable=SC2046 # pkg-config prints several flags
gcc -std=c99 -Wall -Wextra -Werror "$T/build_info.c" $(PKG_CONFIG_PATH=$D/lib/pkgconfig pkg-config --cflags --libs mm-session) \
    -Wl,-rpath,"$D/lib" -o "$T/build_info"
for level in x86-64-v2 x86-64-v3; do
    info=$(MM_SESSION_CPU=$level "$T/build_info")
    case $info in *"target-cpu: $level;"*) ;; *) fail "MM_SESSION_CPU=$level loaded: $info" ;; esac
    case $info in *AVX512*) fail "an AVX-512 backend in the $level copy" ;; esac
    zmm=$(objdump -d --no-show-raw-insn "$D/lib/libmm_session-$level.so" | awk '/^[0-9a-f]+ <.*>:$/ { f = $2 } /zmm/ { print f }' | sort -u)
    other=$(grep -v crc32fast <<<"$zmm" || true)
    test -z "$other" || fail "AVX-512 code in the $level copy outside crc32fast's runtime-detected path: $other"
    echo "$me: the $level copy needs no AVX-512 (zmm code only in $(grep -c . <<<"$zmm") runtime-detected crc32fast function(s))"
done
info=$("$T/build_info")
echo "$me: mm_build_info here: $info"

scripts/check-install.sh "$build" "$model" "$mmproj" "$image" "$D"
B=$build/consumer-tree
for exe in "$B/describe" "$B/describe_static" "$B/cmake/describe_cpp"; do
    echo "$me: ${exe#"$B"/} answered: $("$exe" "$model" "$mmproj" "$image" | sed -n 's/^prompt: .*media encoded, \(.*\) generated.*/\1/p')"
done
echo "$me: all checks passed"

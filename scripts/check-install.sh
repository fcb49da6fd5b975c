#!/usr/bin/env bash
# check-install.sh: `make check-install`. Consumers of an installed tree, built against that
# prefix only: the C example with pkg-config (shared), the same statically with
# `pkg-config --static` from a copy of the tree without libmm_session.so, and a CMake project
# (find_package) with the C++ example, shared and static; each runs on the generated models.
# Then uninstall leaves the prefix empty.
# With a PREFIX argument it checks that tree instead, as it is (the unpacked release tarball,
# scripts/test-release-dist.sh): no install, no uninstall, and the tree is left untouched.
#
# Usage: scripts/check-install.sh BUILD MODEL MMPROJ IMAGE [PREFIX]   (VERSION and SOVERSION in
# the environment; `make install` and `make uninstall` run with the caller's make flags)
set -euo pipefail

root=$(pwd)
B=$root/$1/consumer model=$2 mmproj=$3 image=$4 given=${5:-}
: "${VERSION:?}" "${SOVERSION:?}"
make=${MAKE:-make}
S=$(mktemp -d)
if [ -n "$given" ]; then
    P=$(cd "$given" && pwd) B=$B-tree me=check-tree
else
    P=$(mktemp -d) me=check-install
fi
rm -rf "$B"
mkdir -p "$B"

test -n "$given" || "$make" --no-print-directory install PREFIX="$P" >/dev/null
readelf -d "$P/lib/libmm_session.so" | grep "SONAME.*libmm_session.so.$SOVERSION" >/dev/null
echo "$me: soname libmm_session.so.$SOVERSION"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
# shellcheck disable=SC2046 # pkg-config prints several flags
gcc -std=c99 -Wall -Wextra -Werror examples/c/describe.c $(pkg-config --cflags --libs mm-session) -Wl,-rpath,"$P/lib" -o "$B/describe"
"$B/describe" "$model" "$mmproj" "$image" | tail -1 | grep -qx "live sessions: 0"
echo "$me: C with pkg-config: live sessions: 0"

cp -a "$P/." "$S/"
rm -f "$S"/lib/libmm_session.so*
# An installed .pc names its prefix; the tarball's is relative to the .pc, so the copy is as is.
test -n "$given" || sed -i "s|^prefix=.*|prefix=$S|" "$S/lib/pkgconfig/mm-session.pc"
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror examples/c/describe.c $(PKG_CONFIG_PATH="$S/lib/pkgconfig" pkg-config --static --cflags --libs mm-session) -o "$B/describe_static"
if readelf -d "$B/describe_static" | grep libmm_session >/dev/null; then echo "$me: describe_static needs libmm_session"; exit 1; fi
"$B/describe_static" "$model" "$mmproj" "$image" | tail -1 | grep -qx "live sessions: 0"
echo "$me: C static with pkg-config --static, no libmm_session.so present: live sessions: 0"

cmake -S tests/consumer -B "$B/cmake" -DCMAKE_PREFIX_PATH="$P" -DMM_SESSION_VERSION="$SOVERSION" -DDESCRIBE_SOURCE="$root/examples/cpp/describe.cpp" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B/cmake" >/dev/null
for exe in describe_cpp describe_cpp_static; do
    "$B/cmake/$exe" "$model" "$mmproj" "$image" | tail -1 | grep -qx "live sessions: 0"
done
echo "$me: C++ with CMake find_package (shared and static): live sessions: 0"

rm -rf "$S"
test -z "$given" || exit 0
"$make" --no-print-directory uninstall PREFIX="$P" >/dev/null
left=$(find "$P" -mindepth 1 | head -3)
test -z "$left" || { echo "uninstall left: $left"; exit 1; }
echo "$me: uninstall removed everything"
rm -rf "$P"

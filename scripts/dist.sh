#!/usr/bin/env bash
# dist.sh: `make dist`, the release tarball C and C++ users (packagers, CI) download
# (docs/building.md, "Release tarball"): dist/mm-session-VERSION-linux-x86_64.tar.gz, one top
# folder mm-session-VERSION-linux-x86_64/ with
#   include/                  mm_session.h, mm_session.hpp
#   lib/                      every file of build/portable-lib (make portable-lib), links kept:
#                             libmm_session.so.SOVERSION, libmm_session.so, libmm_session.a, ...
#   lib/pkgconfig/            mm-session.pc, its prefix relative to its own folder (${pcfiledir})
#   lib/cmake/mm-session/     the CMake package, its paths relative to CMAKE_CURRENT_LIST_DIR
#   README.txt                what is inside, how to use it, the CPU level; CHANGELOG.md
# The headers, .pc and CMake files are written by scripts/install.sh dev-files, as for `make
# install`. Reproducible: sorted names, every mtime the last commit's (SOURCE_DATE_EPOCH when
# set), owner and group 0, gzip without a name or time stamp.
#
# Usage: VERSION=x.y.z SOVERSION=a.b scripts/dist.sh LIBS OUT   (LIBS: build/portable-lib)
set -euo pipefail

: "${VERSION:?}" "${SOVERSION:?}"
libs=$1 out=$2
name=mm-session-$VERSION-linux-x86_64
tarball=$out/$name.tar.gz
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
test -e "$libs/libmm_session.so" || { echo "dist: no $libs/libmm_session.so (make portable-lib)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/$name
mkdir -p "$top/lib"
# Every file of the library folder, whatever it holds, links kept (cp -P).
cp -P "$libs"/* "$top/lib/"
# shellcheck disable=SC2016 # ${pcfiledir} is pkg-config's, written as is
PREFIX='${pcfiledir}/../..' INSTALL_LIBDIR=lib VERSION=$VERSION SOVERSION=$SOVERSION \
    scripts/install.sh dev-files "$top"
install -m 644 CHANGELOG.md "$top/"
cat >"$top/README.txt" <<EOF
mm-session $VERSION for Linux x86_64
====================================

One handle for a multimodal llama.cpp model and its projector, with a C ABI (and a header-only
C++ wrapper). License: MIT.

Inside
  include/mm_session.h, include/mm_session.hpp   the C header and the C++ header
  lib/libmm_session.so.$SOVERSION                   the shared library (soname libmm_session.so.$SOVERSION): a
                                                 dispatcher that loads, at load time, the copy
                                                 below for the best level this CPU runs
  lib/libmm_session-x86-64-LEVEL.so              the library for x86-64-v2, v3, v4 and v4-vnni
  lib/libmm_session.so                           link for the linker (-lmm_session)
  lib/libmm_session.a                            the static library, for x86-64-v2
  lib/pkgconfig/mm-session.pc                    pkg-config file (Libs.private for static links)
  lib/cmake/mm-session/                          CMake package: mm-session::mm-session,
                                                 mm-session::shared, mm-session::static
Every path in the .pc and CMake files is relative to the file itself: unpack the folder
anywhere (DIR below).

CPU level
  One copy of the library per x86-64 level: v2 (SSE4.2), v3 (AVX2, FMA, F16C, BMI2), v4
  (AVX-512) and v4-vnni (AVX-512 with VNNI, VBMI and BF16). libmm_session.so loads the best
  one this CPU runs; MM_SESSION_CPU=v2 (v3, v4, v4-vnni) picks a lower one. mm_build_info()
  names the copy loaded ("target-cpu: x86-64-v3"). The static library is the x86-64-v2 build.
  CPU only: GPU backends (CUDA, Vulkan) are cargo features of a source build.

Use
  C, pkg-config:
    export PKG_CONFIG_PATH=DIR/lib/pkgconfig
    cc app.c \$(pkg-config --cflags --libs mm-session) -Wl,-rpath,DIR/lib -o app
    cc app.c \$(pkg-config --static --cflags --libs mm-session) -o app   # static
  C++, CMake (cmake -DCMAKE_PREFIX_PATH=DIR):
    find_package(mm-session $SOVERSION REQUIRED)
    target_link_libraries(app PRIVATE mm-session::mm-session)
  Ship lib/libmm_session.so.$SOVERSION (and any other lib/libmm_session*.so) next to your program,
  or point an rpath or LD_LIBRARY_PATH at DIR/lib.

Documentation: docs/ of the source repository (c-api.md, building.md).
EOF

mkdir -p "$out"
rm -f "$tarball"
find "$top" -exec touch -h -d "@$epoch" {} +
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mode='u+rw,go+r,go-w' \
    --mtime="@$epoch" --format=gnu -cf - "$name" | gzip -9n >"$tarball"
echo "dist: $tarball ($(du -h "$tarball" | cut -f1))"

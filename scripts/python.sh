#!/usr/bin/env bash
# python.sh: `make test-python` and `make bench-python` (bindings/python,
# bindings/python/README.md). VENV is the venv the Makefile made under BUILD, with cffi, pytest,
# NumPy, Pillow and ruff RUFF (pinned: its rules change between versions).
#
# Usage: scripts/python.sh test BUILD VENV RUFF
#        scripts/python.sh bench BUILD VENV LCP_PYTHON
#
# test: ruff check and ruff format --check first (a venv made before ruff was pinned, or with
# another version, gets the pinned one), by the [tool.ruff] settings of
# bindings/python/pyproject.toml; then the pytest suite on the installed package (its bundled
# library), then the two ways users install it, each in a fresh venv and run from outside the
# repository: from source (`pip install bindings/python`), and from the wheel with no Rust on
# the PATH. No Python test asserts a duration or a speed (bindings/python/tests/conftest.py).
# bench: llama-cpp-python (LCP_PYTHON, skipped when it does not import) against this package on
# the bench pair (bindings/python/bench/bench.py).
set -euo pipefail

root=$(pwd)
mode=$1 build=$2 venv=$3
py=$venv/bin/python

if [ "$mode" = bench ]; then
    "$py" -m pip install -q --force-reinstall --no-deps ./bindings/python
    "$py" bindings/python/bench/bench.py "$build/fixtures-bench/tiny-llama.gguf" "$build/fixtures-bench/tiny-mmproj.gguf" \
        "$build/fixtures-bench/tiny-image.png" --lcp-python "$4"
    exit 0
fi
[ "$mode" = test ] || { echo "usage: scripts/python.sh test|bench ..." >&2; exit 2; }
ruff=$4
fresh=$build/venv-python-fresh
fixtures=(MM_FIXTURES_DIR="$root/$build/fixtures" MM_SEEING_DIR="$root/$build/fixtures-seeing"
    MM_AUDIO_DIR="$root/$build/fixtures-audio" MM_BENCH_DIR="$root/$build/fixtures-bench")

"$py" -m ruff --version 2>/dev/null | grep -qx "ruff $ruff" || "$py" -m pip install -q "ruff==$ruff"
"$py" -m ruff check --no-cache bindings/python
"$py" -m ruff format --check --no-cache bindings/python
"$py" -m pip install -q --force-reinstall --no-deps ./bindings/python
(cd "$build" && env "${fixtures[@]}" MM_SESSION_EXPECT_ORIGIN=bundled "$root/$venv/bin/pytest" -q -p no:cacheprovider "$root/bindings/python/tests")
rm -rf "$fresh" "$build/wheels"
"$py" -m venv "$fresh"
"$fresh/bin/pip" install -q ./bindings/python
(cd /tmp && "$root/$fresh/bin/python" "$root/bindings/python/tests/smoke.py" "$root/$build/fixtures-seeing" bundled)
"$py" -m pip wheel -q --no-deps -w "$build/wheels" ./bindings/python
"$fresh/bin/pip" uninstall -q -y mm-session
(cd /tmp && env PATH=/usr/bin:/bin "$root/$fresh/bin/pip" install -q "$root/$build"/wheels/mm_session-*.whl)
(cd /tmp && env -i PATH=/usr/bin:/bin HOME="$HOME" "$root/$fresh/bin/python" "$root/bindings/python/tests/smoke.py" "$root/$build/fixtures-seeing" bundled)
echo "test-python: wheel $(ls "$build/wheels")"

#!/usr/bin/env bash
# deps.sh: installs, with apt, the Debian packages that the make targets need and that this
# machine lacks. Every package install of the Makefile is here.
#
# Usage: scripts/deps.sh GROUP...
#   base     cmake and a C/C++ compiler for llama.cpp, libclang for bindgen, valgrind for the
#            leak check, clang with libFuzzer for fuzzing; then checks that cargo is there and
#            adds rustfmt and clippy with rustup when missing (make deps).
#   go       golang-go (Go 1.19 on Debian 12) when $GO is missing (make go-deps).
#   python   python3 and python3-venv when python3 cannot make a venv (the venv of make
#            test-python).
#   node     nodejs and npm when node or npm is missing (make node-deps).
#   doxygen  doxygen when missing (make api-docs).
# CARGO and GO name the commands to look for (default: cargo, go). Runs apt-get with sudo
# unless run as root.
set -euo pipefail

CARGO=${CARGO:-cargo}
GO=${GO:-go}
SUDO=sudo
[ "$(id -u)" = 0 ] && SUDO=

apt_install() {
    echo "installing: $*"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

base() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    command -v valgrind >/dev/null || missing+=(valgrind)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v clang-14 >/dev/null || missing+=(clang-14 libclang-rt-14-dev)
    ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ldconfig -p | grep 'libclang.*\.so' >/dev/null ||
        missing+=(libclang-dev)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
    command -v "$CARGO" >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }
    "$CARGO" fmt --version >/dev/null 2>&1 && "$CARGO" clippy --version >/dev/null 2>&1 || rustup component add rustfmt clippy
}

[ $# -gt 0 ] || { echo "usage: scripts/deps.sh base|go|python|node|doxygen..." >&2; exit 2; }
for group in "$@"; do
    case $group in
        base) base ;;
        go) command -v "$GO" >/dev/null || apt_install golang-go ;;
        python) command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv ;;
        node) command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm ;;
        doxygen) command -v doxygen >/dev/null || apt_install doxygen ;;
        *) echo "scripts/deps.sh: unknown group $group" >&2; exit 2 ;;
    esac
done

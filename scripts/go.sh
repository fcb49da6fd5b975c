#!/usr/bin/env bash
# go.sh: `make test-go` and `make bench-go` (bindings/go, bindings/go/README.md). The module
# links the library with cgo through pkg-config: `make go-pc` writes a pkg-config file for this
# source tree (target/release, include/) into BUILD/pkgconfig; the tests and the benchmark
# build against it, and examples/go/describe against a fresh `make install` prefix, as a user's
# program would.
#
# Usage: scripts/go.sh test BUILD LIBDIR MODEL MMPROJ IMAGE
#        scripts/go.sh bench BUILD LIBDIR ROUNDS
# GO names the go command (default: go).
#
# test: gofmt and go vet; the tests under the race detector (cgocheck=1, the default); the
# tests again without it and with cgocheck=2 (every pointer store checked: GODEBUG before Go
# 1.21, GOEXPERIMENT since), which also measures the 200-cycle memory test; the overhead
# benchmark for 2 rounds, which checks that both halves answer alike (its figures are make
# bench-go's); examples/go/describe built against an installed prefix and run on the tiny pair.
# bench: the binding's overhead on one request against the C API called directly (ROUNDS
# rounds), printed with its goal (Ask: under +3% of CPU time); a figure never fails the run.
set -euo pipefail

GO=${GO:-go}
root=$(pwd)
mode=$1 build=$2 libdir=$3

# Go's build cache does not look at headers outside the package: CGO_CFLAGS carries a hash of
# mm_session.h, so that a changed header rebuilds the cgo code instead of reusing old layouts.
header_flags() { echo "-g -O2 -DMM_SESSION_H_SHA256=$(sha256sum "$1" | cut -c1-16)"; }
go_env=(PKG_CONFIG_PATH="$root/$build/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$root/$libdir"
    CGO_CFLAGS="$(header_flags "$root/include/mm_session.h")" MM_FIXTURES="$root/$libdir/mm-fixtures")
bench=(test -count=1 -run '^$' -bench Overhead)

if [ "$mode" = bench ]; then
    cd bindings/go
    env "${go_env[@]}" "$GO" "${bench[@]}" -benchtime "$4x"
    exit 0
fi
[ "$mode" = test ] || { echo "usage: scripts/go.sh test|bench ..." >&2; exit 2; }
model=$4 mmproj=$5 image=$6

unformatted=$(gofmt -l bindings/go examples/go)
[ -z "$unformatted" ] || { echo "gofmt -l:" $unformatted; exit 1; }
(cd bindings/go && env "${go_env[@]}" "$GO" vet ./...)
(cd examples/go && env "${go_env[@]}" "$GO" vet ./...)
(cd bindings/go && env "${go_env[@]}" "$GO" test -race -count=1 ./...)
(cd bindings/go && check2=$("$GO" env GOVERSION | awk -F. '{print ($2 >= 21 ? "GOEXPERIMENT=cgocheck2" : "GODEBUG=cgocheck=2")}') &&
    env "${go_env[@]}" "$check2" "$GO" test -count=1 -v ./... | grep -E '^(--- FAIL|ok|FAIL)|_test.go:')
(cd bindings/go && env "${go_env[@]}" "$GO" "${bench[@]}" -benchtime 2x | grep -E '^(--- FAIL|ok|FAIL)|_test.go:')

P=$(mktemp -d)
B=$root/$build/go
mkdir -p "$B"
"${MAKE:-make}" --no-print-directory install PREFIX="$P" >/dev/null
(cd examples/go && PKG_CONFIG_PATH="$P/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$P/lib" CGO_CFLAGS="$(header_flags "$P/include/mm_session.h")" \
    "$GO" build -o "$B/describe" ./describe)
"$B/describe" "$model" "$mmproj" "$image" | tail -1 | grep -qx "live sessions: 0"
echo "test-go: examples/go/describe, built against an installed prefix: live sessions: 0"
"${MAKE:-make}" --no-print-directory uninstall PREFIX="$P" >/dev/null
rm -rf "$P"

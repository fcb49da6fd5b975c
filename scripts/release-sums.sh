#!/usr/bin/env bash
# release-sums.sh DIST VERSION: the last step of `make release`: checks that every artifact of
# the release is in DIST and writes DIST/SHA256SUMS (sha256sum's format, paths under DIST).
set -euo pipefail

dist=$1 version=$2
cd "$dist"
artifacts=(
    mm_session-"$version"-py3-none-manylinux*_x86_64.whl
    mm_session-"$version".tar.gz
    mm-session-"$version".tgz
    mm-session-linux-x64-gnu-"$version".tgz
    goproxy/github.com/mm-session/mm-session/bindings/go/@v/v"$version".zip
    mm-session-"$version"-linux-x86_64.tar.gz
)
for a in "${artifacts[@]}"; do
    [ -f "$a" ] || { echo "release-sums: $dist/$a is missing" >&2; exit 1; }
done
sha256sum "${artifacts[@]}" >SHA256SUMS
cat SHA256SUMS

#!/usr/bin/env bash
# check-symbols.sh: `make check-symbols`. The shared library exports mm_* symbols only
# (llama.cpp and ggml stay hidden), and neither it nor the static library contains code of the
# fixture generator (a development tool in its own crate).
#
# Usage: scripts/check-symbols.sh LIBDIR   (the folder of libmm_session.so and libmm_session.a)
set -euo pipefail

lib=$1/libmm_session.so
archive=$1/libmm_session.a
extra=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^mm_' | grep -Ev '^(_init|_fini|__bss_start|_edata|_end)$' || true)
if [ -n "$extra" ]; then
    echo "exported symbols beyond mm_*:"
    echo "$extra" | head
    exit 1
fi
fixture=$(nm --defined-only "$lib" "$archive" 2>/dev/null | grep -ci 'mm_fixtures' || true)
if [ "$fixture" != "0" ]; then
    echo "the shipped library contains $fixture fixture-generator symbols"
    exit 1
fi
echo "check-symbols: $(nm -D --defined-only "$lib" | grep -c ' mm_') symbols, all mm_*; no fixture-generator code"

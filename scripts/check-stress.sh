#!/usr/bin/env bash
# check-stress.sh: `make check-stress`, the memory promise (docs/performance.md), measured with
# glibc's malloc as it comes. Resident memory may not grow over create/ask/destroy cycles (limit
# 1024 kB from cycle 10 to 500) nor over requests on one session (1024 kB over 2000), nor over
# cycles of a session that decodes together with three forks, asked from four threads (3072 kB
# from cycle 10 to 300: whichever asker thread runs a step allocates in its own malloc arena,
# and resident memory then wanders by -1.0 to +1.4 MB from run to run with no trend over 1000
# cycles; a context that stayed behind would cost far more than 10 kB a cycle).
# Unloading a model hands the heap's free pages back (malloc_trim); before it did, glibc's
# dynamic mmap threshold let llama.cpp's compute buffers land in the heap where allocation
# history put them, and resident memory wandered by megabytes with nothing held.
#
# Usage: scripts/check-stress.sh STRESS MODEL MMPROJ IMAGE   (STRESS: the built examples/c/stress)
set -euo pipefail

stress=$1 model=$2 mmproj=$3 image=$4

# check RUNS LIMIT_KB [--requests]
check() {
    local line growth
    line=$("$stress" "$model" "$mmproj" "$image" "$1" ${3:+"$3"} | tail -1)
    echo "$line"
    growth=${line##*growth_kb=}
    [ "$growth" -lt "$2" ] || { echo "check-stress: growth $growth kB, limit $2 kB"; exit 1; }
}

check 500 1024
check 2000 1024 --requests
check 300 3072 --batched

#!/bin/sh
# cpu-level.sh
#
# Prints the rustc CPU name of the highest x86-64 level (x86-64-v3, x86-64-v2, x86-64) that
# this machine runs and whose every instruction set valgrind decodes: the baseline of the
# builds that must run on any x86-64 machine, under valgrind or not (`make valgrind`, the
# fuzzing build). A native build (`-C target-cpu=native`, ggml's -march=native) uses whatever
# the building CPU has, and valgrind 3.19 (Debian 12) stops with SIGILL at the first AVX-512,
# SHA-NI (sha2's rounds when `sha` is a compile-time feature), VAES, VPCLMULQDQ or GFNI
# instruction. A portable build of the printed level uses none of them: what is left to the CPU
# at run time (sha2's detection of SHA-NI) asks CPUID, which valgrind answers as a CPU without
# them. Exits 1 when no level qualifies (not x86-64).
#
# cpu-level.sh --runs CPU
#
# Exits 0 when this machine runs code built for CPU (a rustc CPU name), 1 with a message when
# it lacks an instruction set CPU enables (`make test PORTABLE=1` checks its CPU_BASELINE).
# NATIVE_CPU=NAME (a rustc CPU name) stands for this machine, to see what another would get.
set -eu

# The rustc target features whose instructions valgrind 3.19 decodes (VEX's amd64 front end).
DECODED="fxsr sse sse2 sse3 ssse3 sse4.1 sse4.2 popcnt cmpxchg16b avx avx2 fma f16c bmi1 bmi2
lzcnt movbe xsave aes pclmulqdq"

features() {
  rustc --print cfg -C target-cpu="$1" | sed -n 's/^target_feature="\(.*\)"$/\1/p'
}

# fits LEVEL [ALLOWED]: every feature of LEVEL is one this machine has (and one of ALLOWED).
native=$(features "${NATIVE_CPU:-native}")
fits() {
  for feature in $(features "$1"); do
    echo "$native" | grep -qx "$feature" || return 1
    [ $# -lt 2 ] || echo "$2" | tr ' ' '\n' | grep -qx "$feature" || return 1
  done
}

if [ "${1:-}" = --runs ]; then
  fits "${2:?usage: cpu-level.sh --runs CPU}" && exit 0
  echo "this machine cannot run code built for $2: try CPU_BASELINE=$("$0")" >&2
  exit 1
fi

for level in x86-64-v3 x86-64-v2 x86-64; do
  fits "$level" "$DECODED" && { echo "$level"; exit 0; }
done
echo "cpu-level.sh: no x86-64 level both runs here and is decoded by valgrind" >&2
exit 1

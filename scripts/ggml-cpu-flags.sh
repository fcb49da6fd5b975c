#!/bin/sh
# ggml-cpu-flags.sh CPU
#
# Prints the GGML_* options that build llama.cpp's CPU code for exactly the instruction sets of
# the target CPU named as rustc names it (x86-64-v2, x86-64-v3, x86-64-v4, znver3, ...): ON for
# each set `rustc -C target-cpu=CPU` enables, OFF for the others. llama-cpp-sys-2 passes GGML_*
# environment variables to llama.cpp's CMake; without the OFFs, ggml turns AVX, AVX2, FMA, F16C
# and BMI2 on whenever GGML_NATIVE is off, whatever the baseline. Prints nothing off x86-64
# (there, `-C target-cpu` alone sets the baseline).
set -eu
#
# ggml-cpu-flags.sh --rustflags CPU
#
# Prints the rustc flags of that target: `-C target-cpu=CPU`, but for x86-64-v4-vnni, this
# project's name for x86-64-v4 with AVX512-VNNI, VBMI and BF16 (Zen 4, Sapphire Rapids: the sets
# ggml's matrix kernels use), which no rustc CPU name gives.
if [ "${1:-}" = --rustflags ]; then rustflags_only=1; shift; else rustflags_only=""; fi
cpu=${1:?usage: ggml-cpu-flags.sh [--rustflags] CPU}
case $cpu in
  x86-64-v4-vnni) rustflags="-C target-cpu=x86-64-v4 -C target-feature=+avx512vnni,+avx512vbmi,+avx512bf16" ;;
  *) rustflags="-C target-cpu=$cpu" ;;
esac
if [ -n "$rustflags_only" ]; then echo "$rustflags"; exit 0; fi
# shellcheck disable=SC2086 # the flags are words
cfg=$(rustc --print cfg $rustflags)
echo "$cfg" | grep -qx 'target_arch="x86_64"' || exit 0
out=""
for pair in sse4.2:SSE42 avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avxvnni:AVX_VNNI \
            avx512f:AVX512 avx512vbmi:AVX512_VBMI avx512vnni:AVX512_VNNI avx512bf16:AVX512_BF16 \
            amx-tile:AMX_TILE amx-int8:AMX_INT8 amx-bf16:AMX_BF16; do
  feature=${pair%%:*}
  option=${pair#*:}
  if echo "$cfg" | grep -qx "target_feature=\"$feature\""; then value=ON; else value=OFF; fi
  out="$out GGML_$option=$value"
done
echo $out

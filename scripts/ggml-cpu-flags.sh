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
cpu=${1:?usage: ggml-cpu-flags.sh CPU}
cfg=$(rustc --print cfg -C target-cpu="$cpu")
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

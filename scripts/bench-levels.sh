#!/usr/bin/env bash
# bench-levels.sh PROGRAM NATIVE_DIR PORTABLE_DIR MODEL ROUNDS: `make bench`'s comparison of the
# copy the packages' dispatcher loads on this machine (make portable-lib) with the native build:
# examples/c/bench_levels run against each library folder in turn (LD_LIBRARY_PATH), the side
# that goes first alternating, ROUNDS times; prints the medians of its medians:
#   stage=prefill native_ms=A portable_ms=B ratio=B/A
#   stage=generation native_ms_per_token=A portable_ms_per_token=B ratio=B/A
# and the goal, ratio <= 1.05. Without PORTABLE_DIR/libmm_session.so it says how to build it.
set -euo pipefail

program=$1 native=$2 portable=$3 model=$4 rounds=$5
if [ ! -e "$portable/libmm_session.so" ]; then
    echo "stage=levels skipped: no $portable/libmm_session.so (make portable-lib builds it: three builds of llama.cpp)"
    exit 0
fi
declare -A prefill gen
run() { LD_LIBRARY_PATH=$2 "$program" "$model" 5 | sed -n "s/^prefill_ms=\(.*\) gen_ms_per_token=\(.*\)$/\1 \2/p"; }
for ((r = 0; r < rounds; r++)); do
    order=(native portable)
    [ $((r % 2)) -eq 1 ] && order=(portable native)
    for side in "${order[@]}"; do
        dir=$native
        [ "$side" = portable ] && dir=$portable
        read -r p g < <(run "$side" "$dir") || true
        [ -n "${g:-}" ] || { echo "bench-levels: bench_levels failed against $dir" >&2; exit 1; }
        prefill[$side]+="$p "
        gen[$side]+="$g "
    done
done
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
pn=$(median "${prefill[native]}") pp=$(median "${prefill[portable]}")
gn=$(median "${gen[native]}") gp=$(median "${gen[portable]}")
copy=$(LD_LIBRARY_PATH=$portable "$program" "$model" 1 | sed -n 's/^library=.*target-cpu: \([^;]*\);.*/\1/p')
echo "portable_copy=$copy"
awk -v a="$pn" -v b="$pp" 'BEGIN { printf "stage=prefill native_ms=%.2f portable_ms=%.2f ratio=%.3f\n", a, b, b / a }'
awk -v a="$gn" -v b="$gp" 'BEGIN { printf "stage=generation native_ms_per_token=%.3f portable_ms_per_token=%.3f ratio=%.3f\n", a, b, b / a }'
echo "goal: the copy the dispatcher loads within 5% of the native build (ratio <= 1.05)"

#!/usr/bin/env bash
# gpu-check.sh: `make gpu-check` (docs/performance.md, "GPU").
#
# Builds the library and crates/capi/examples/gpu_check.rs with llama.cpp's CUDA backend for the
# one GPU of the machine (its compute capability, from nvidia-smi, as CMAKE_CUDA_ARCHITECTURES:
# one architecture compiles in minutes, all of them in an hour), in target/cuda, then measures
# free GPU memory around create, destroy and CYCLES create/ask/destroy cycles with the projector
# on and off the GPU, and prefill and generation speed, on the bench pair and on MM_TEST_MODEL
# when set. Ends with `vram_growth_mib=X`. Then, on a GPU (not with DRY=1), `make bench-batch`'s
# program (crates/capi/examples/bench_batch.rs) with every layer offloaded, on MM_TEST_MODEL when
# set, else the bench pair's text model: the same `sessions=B ...` lines, whose goal on a GPU is
# speedup_vs_one >= 4. BATCH_RUNS: its runs per median (default 3).
#
# DRY=1: the same program built for the CPU (no CUDA toolkit, no GPU needed; `make test` runs it
# with a few cycles); GPU memory is reported as n/a.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
CYCLES=${CYCLES:-100}
started=$(date +%s)
if [ -n "${DRY:-}" ]; then
  target_dir=${CARGO_TARGET_DIR:-target}
  features=()
else
  command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found; on a machine without an NVIDIA GPU run 'make gpu-check DRY=1'" >&2; exit 1; }
  nvidia-smi --query-gpu=name,compute_cap,memory.total,memory.free --format=csv,noheader | sed 's/^/gpu: /'
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  [ -n "$arch" ] || { echo "gpu-check: nvidia-smi reports no compute capability" >&2; exit 1; }
  command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found (install the CUDA toolkit)" >&2; exit 1; }
  export CMAKE_CUDA_ARCHITECTURES="$arch"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  export CARGO_TARGET_DIR=target/cuda
  target_dir=target/cuda
  features=(--features cuda)
  echo "gpu-check: building for CUDA architecture $arch in $target_dir"
fi
$CARGO build --release -p mm-session --example gpu_check "${features[@]}"
echo "gpu-check: built in $(( $(date +%s) - started )) s"
MM_BENCH_DIR=build/gpu-check-fixtures "$target_dir/release/examples/gpu_check" "$CYCLES"
if [ -z "${DRY:-}" ]; then
  $CARGO build --release -p mm-session --example bench_batch "${features[@]}"
  MM_BENCH_DIR=build/gpu-check-fixtures "$target_dir/release/examples/bench_batch" "${BATCH_RUNS:-3}"
fi
echo "gpu-check: done in $(( $(date +%s) - started )) s"

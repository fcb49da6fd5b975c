#!/bin/bash
# run.sh SECONDS TARGET...: runs each harness in turn for SECONDS seconds (nice'd, one fuzzing
# process at a time) on its corpus, with its dictionary, and prints one summary line per
# target from libFuzzer's output.
#   default:     libFuzzer stops at the first crash, abort, timeout or OOM; run.sh exits 1.
#   FUZZ_FORK=1: fork mode with one worker (-fork=1 -ignore_crashes/timeouts/ooms): a worker
#                that dies is replaced and the run goes on; run.sh exits 1 if any input was
#                saved. Either way the inputs are in artifacts/<target>/, the log in
#                target/fuzz-asan/harness/logs/<target>.log; ./triage.sh TARGET FILES names each finding.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${FUZZ_BUILD:-$(cd "$here/.." && pwd)/target/fuzz-asan/harness}
secs=$1
shift
# The build has AddressSanitizer for the C/C++ (README.md): a memory error is reported where
# it happens, with its stack. allocator_may_return_null=1 keeps the behaviour of the C library
# the code ships against: an impossible allocation returns NULL (which the library handles)
# instead of ending the process. LeakSanitizer is off by default (-detect_leaks=0): it runs a
# leak check after every input that leaves memory allocated, which slows the run; pass
# FUZZ_FLAGS with -detect_leaks=1 to turn it on. `make asan` and valgrind check leaks on fixed inputs.
# -rss_limit_mb catches runaway memory, and -malloc_limit_mb (the same by default) any single
# allocation above it. Hangs (any single input over MM_FUZZ_TIMEOUT = 10 s) are caught by the
# harness's watchdog thread, not by libFuzzer's -timeout (fuzz_common.h).
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1}
FLAGS=${FUZZ_FLAGS:--rss_limit_mb=2048 -timeout=0 -detect_leaks=0}
export MM_FUZZ_TIMEOUT=${MM_FUZZ_TIMEOUT:-10}
if [ -n "${FUZZ_FORK:-}" ]; then FLAGS="$FLAGS -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"; fi
# ggml prints a backtrace through gdb on every abort, and Rust one on every panic: seconds per
# finding. triage.sh and the reproduction commands in README.md turn them back on.
export GGML_NO_BACKTRACE=1 RUST_BACKTRACE=0
export MM_FUZZ_FIXTURES=$bin/fixtures
fail=0
mkdir -p "$bin/logs"
for t in "$@"; do
  mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
  dict=()
  [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
  log=$bin/logs/$t.log
  before=$(ls "$here/artifacts/$t" | wc -l)
  start=$(date +%s)
  # shellcheck disable=SC2086
  nice -n 10 "$bin/$t" -max_total_time="$secs" $FLAGS -print_final_stats=1 \
    -artifact_prefix="$here/artifacts/$t/" "${dict[@]}" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  found=$(( $(ls "$here/artifacts/$t" | wc -l) - before ))
  if [ -n "${FUZZ_FORK:-}" ]; then
    # Fork mode: "#EXECS: cov: C ft: F corp: N exec/s R oom/timeout/crash: a/b/c time: Ts ..."
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
    execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
    rate=$(( ${execs:-0} / (wall > 0 ? wall : 1) ))
    corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
    extra=" oom/timeout/crash $(sed -n 's/.*oom\/timeout\/crash: \([0-9/]*\).*/\1/p' <<<"$last"),"
    rss="n/a (fork mode)"
  else
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
    extra=""
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log") MB"
  fi
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then status=ok; else status="FAILED (exit $rc, $found new input(s) in artifacts/$t/)"; fail=1; fi
  printf '%-12s %s: %s execs in %ss (%s/s), cov %s, ft %s, corpus %s,%s peak rss %s\n' \
    "$t" "$status" "${execs:-?}" "$wall" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$extra" "${rss:-?}"
  if [ $rc -ne 0 ] || [ "$found" -ne 0 ]; then
    grep -m3 -E 'FUZZ INVARIANT|GGML_ASSERT|GGML_ABORT|panicked at|terminate called|deadly signal|ERROR: libFuzzer|Test unit written' "$log" | sed 's/^/    /'
  fi
done
exit $fail

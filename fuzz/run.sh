#!/bin/bash
# run.sh SECONDS TARGET...: runs each harness in turn for SECONDS seconds (nice'd, one process
# at a time) on its corpus, with its dictionary, and prints one summary line per target from
# libFuzzer's final statistics. Exits 1 if any run found a crash, abort, timeout or OOM (the
# input is then in artifacts/<target>/, the log in build/logs/<target>.log).
set -u
here=$(cd "$(dirname "$0")" && pwd)
secs=$1
shift
# No ASan/LSan in this build: libFuzzer cannot see leaks (-detect_leaks=0 says so explicitly).
# -rss_limit_mb catches runaway memory; -timeout catches hangs (any single input > 10 s).
FLAGS=${FUZZ_FLAGS:--rss_limit_mb=2048 -timeout=10 -detect_leaks=0}
fail=0
mkdir -p "$here/build/logs"
for t in "$@"; do
  mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
  dict=()
  [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
  log=$here/build/logs/$t.log
  start=$(date +%s)
  # shellcheck disable=SC2086
  MM_FUZZ_FIXTURES=$here/build/fixtures nice -n 10 "$here/build/$t" -max_total_time="$secs" $FLAGS \
    -print_final_stats=1 -artifact_prefix="$here/artifacts/$t/" "${dict[@]}" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  if [ $rc -eq 0 ]; then status=ok; else status="FAILED (exit $rc)"; fail=1; fi
  printf '%-12s %s: %s execs in %ss (%s/s), cov %s, ft %s, corpus %s, peak rss %s MB\n' \
    "$t" "$status" "${execs:-?}" "$wall" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}"
  if [ $rc -ne 0 ]; then
    grep -m3 -E 'FUZZ INVARIANT|GGML_ASSERT|GGML_ABORT|panicked|terminate called|deadly signal|ERROR: libFuzzer|Test unit written' "$log" | sed 's/^/    /'
  fi
done
exit $fail

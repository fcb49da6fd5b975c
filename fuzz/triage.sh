#!/bin/bash
# triage.sh TARGET FILE...: replays each input once (strict: known findings are fatal) and
# prints a one-line signature per input: the GGML_ASSERT/abort location, the Rust panic, the
# harness invariant, or the signal. Inputs with the same signature are the same finding.
# For a full stack trace, run: GGML_NO_BACKTRACE= RUST_BACKTRACE=1 MM_FUZZ_STRICT=1 ../target/fuzz-asan/harness/TARGET FILE
here=$(cd "$(dirname "$0")" && pwd)
bin=${FUZZ_BUILD:-$(cd "$here/.." && pwd)/target/fuzz-asan/harness}
t=$1
shift
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1}
for f in "$@"; do
  out=$(MM_FUZZ_STRICT=1 GGML_NO_BACKTRACE=1 RUST_BACKTRACE=0 MM_FUZZ_FIXTURES=$bin/fixtures \
        timeout 60 "$bin/$t" -timeout=0 -rss_limit_mb=2048 -artifact_prefix="$bin/triage-" "$f" 2>&1)
  rc=$?
  sig=$(grep -m1 -oE '[^ /]+\.(c|cpp|h|rs):[0-9]+(:[0-9]+)?: (GGML_ASSERT\(.*\) failed|GGML_ABORT.*|[a-z].*)|panicked at .*|FUZZ INVARIANT: .*|terminate called .*|what\(\): .*|ERROR: libFuzzer: [a-z-]+( signal)?|fatal error' <<<"$out" | head -1)
  [ -z "$sig" ] && sig=$([ $rc -eq 0 ] && echo "no failure (rc 0)" || echo "rc $rc: $(tail -1 <<<"$out")")
  printf '%s\t%s\t%s\n' "$(stat -c %s "$f")" "$(basename "$f")" "$sig"
done

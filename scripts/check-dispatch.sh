#!/usr/bin/env bash
# check-dispatch.sh LIB MODEL MMPROJ IMAGE: `make check-dispatch`, the dispatcher's choices
# (crates/capi/dispatch/mm_dispatch.c), on copies of LIB (this machine's build) named for the
# four levels: the process maps the copy of the best level this CPU runs, MM_SESSION_CPU
# picks a lower one, a level the CPU lacks or a word that names none is refused with a message,
# calls pass through the stubs, and a folder without the copies stops the process at load with
# a message that names it. The real per-level builds are `make portable-lib`'s.
set -euo pipefail

lib=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
levels="v2 v3 v4 v4-vnni"
for level in $levels; do cp "$lib" "$work/libmm_session-x86-64-$level.so"; done
scripts/dispatch.sh "$work/libmm_session.so.0" libmm_session.so.0 "$work"/libmm_session-x86-64-*.so
ln -s libmm_session.so.0 "$work/libmm_session.so"
gcc -std=c99 -Wall -Wextra -Werror -O2 -Iinclude tests/c/test_dispatch.c -o "$work/test_dispatch" \
    -L"$work" -lmm_session -Wl,-rpath,"$work"

best=x86-64-v2
for level in x86-64-v3 x86-64-v4; do
    if scripts/cpu-level.sh --runs "$level" >/dev/null 2>&1; then best=$level; fi
done
flags=$(grep -m1 '^flags' /proc/cpuinfo)
if [ "$best" = x86-64-v4 ] && [[ " $flags " == *" avx512_vnni "* && " $flags " == *" avx512vbmi "* && " $flags " == *" avx512_bf16 "* ]]; then
    best=x86-64-v4-vnni
fi
fail() { echo "check-dispatch: $*" >&2; exit 1; }
copy_of() { "$work/test_dispatch" "$@" | sed -n 's/^copy=.*libmm_session-\(x86-64-v[0-9a-z-]*\)\.so$/\1/p'; }

[ "$(copy_of "$@")" = "$best" ] || fail "loaded $(copy_of "$@"), not $best"
echo "check-dispatch: this CPU runs $best: loaded libmm_session-$best.so"
[ "$(MM_SESSION_CPU=v2 copy_of "$@")" = x86-64-v2 ] || fail "MM_SESSION_CPU=v2 did not load the v2 copy"
[ "$(MM_SESSION_CPU=x86-64-v2 copy_of "$@")" = x86-64-v2 ] || fail "MM_SESSION_CPU=x86-64-v2 did not load the v2 copy"
out=$(MM_SESSION_CPU=v7 "$work/test_dispatch" "$@" 2>&1) || fail "MM_SESSION_CPU=v7: $out"
grep -q "MM_SESSION_CPU=v7 is not one of v2, v3, v4, v4-vnni; ignored" <<<"$out" || fail "no message for MM_SESSION_CPU=v7: $out"
if [ "$best" != x86-64-v4-vnni ]; then
    out=$(MM_SESSION_CPU=v4-vnni "$work/test_dispatch" "$@" 2>&1) || fail "MM_SESSION_CPU=v4-vnni: $out"
    grep -q "this CPU cannot run x86-64-v4-vnni; ignored" <<<"$out" || fail "no refusal of v4-vnni: $out"
fi
out=$("$work/test_dispatch" "$@")
grep -q "^ask=0 pieces=[1-9]" <<<"$out" || fail "a request through the stubs: $out"
grep -q "^destroyed_again=3 error=mm_session_destroy: session handle" <<<"$out" || fail "an error through the stubs: $out"
echo "check-dispatch: calls, callbacks, strings and errors pass through the stubs"
rm "$work"/libmm_session-x86-64-*.so
if out=$("$work/test_dispatch" "$@" 2>&1); then fail "ran without any copy: $out"; fi
grep -q "no copy of the library in $work could be loaded" <<<"$out" || fail "no message without the copies: $out"
echo "check-dispatch: without the copies the process stops at load, naming the folder"

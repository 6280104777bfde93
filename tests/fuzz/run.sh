#!/usr/bin/env bash
# run.sh - runs one libFuzzer target for a bounded time, as the ctest test
# of the same name in the build-fuzz tree (CMake option MCS_FUZZ).
#   run.sh <fuzzer binary> <seed corpus dir> <work dir> [libFuzzer flags...]
# tests/fuzz/<name>.dict is its dictionary and tests/fuzz/<name>.options
# (one line of flags) adds flags, when present.
# New inputs go to <work dir>/corpus/<name> (the seed directory in the source
# tree is only read); a crash, leak, timeout or broken invariant is kept in
# <work dir>/artifacts/ and its path printed. FUZZ_SECONDS (default 20)
# bounds the run. Exit status 0 only when nothing was found.
set -uo pipefail
bin=$1 seeds=$2 work=$3
shift 3
name=$(basename "$bin")
secs=${FUZZ_SECONDS:-20}
corpus=$work/corpus/$name
art=$work/artifacts
log=$work/logs/$name.log
mkdir -p "$corpus" "$art" "$work/logs"
here=$(cd "$(dirname "$0")" && pwd)
extra=()
[ -f "$here/$name.dict" ] && extra+=("-dict=$here/$name.dict")
[ -f "$here/$name.options" ] && read -r -a more <"$here/$name.options" && extra+=("${more[@]}")

# Sanitizer options of the fuzz runs (the suite's own set abort_on_error,
# which libFuzzer does not need: it writes the crash input on any report).
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${FUZZ_UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

"$bin" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$art/$name-" "${extra[@]}" "$@" "$corpus" "$seeds" >"$log" 2>&1
rc=$?

if [ $rc -eq 0 ]; then
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz: $name: ok, ${runs:-?} runs in ${secs}s, corpus $(ls "$corpus" | wc -l) files"
  exit 0
fi
echo "fuzz: $name: FAILED (exit $rc); log $log"
# The report: the sanitizer's or the invariant's message and the stack.
grep -E 'ERROR: |SUMMARY: |fuzz invariant failed|runtime error|^ +#[0-9]+ ' "$log" |
  grep -vE 'in fuzzer::|in __sanitizer|/libc\.so|nptl/|signal/|stdlib/abort|csu/|in _start|in main ' | head -30
found=$(grep -oE "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //')
if [ -n "$found" ]; then
  for f in $found; do
    echo "fuzz: $name: crash input: $f"
    echo "fuzz: reproduce: $bin $f"
  done
else
  echo "fuzz: $name: no crash input written; tail of log:"
  tail -20 "$log"
fi
exit 1

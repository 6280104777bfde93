#!/usr/bin/env bash
# test.sh - the whole suite, as `make test` and CI run it:
#   lint; build normal and ASan+UBSan; unit tests (ctest) in both builds;
#   libFuzzer targets (build-fuzz, clang) for MCS_TEST_FUZZ_SECONDS (20) each;
#   integration tests (pytest, real Mosquitto/PostgreSQL/Redis started by the
#   tests themselves) against the sanitizer build of every binary, then the
#   storage/archive/history files again on TimescaleDB (MCS_PG_DIALECT).
# Ends with "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/test-results
PY=/usr/bin/python3

bash scripts/deps.sh || exit 1
rm -rf "$OUT"; mkdir -p "$OUT"

fail=0
bash scripts/lint.sh || fail=1

for b in build build-asan; do
  san=OFF; type=RelWithDebInfo
  [ "$b" = build-asan ] && { san=ON; type=Debug; }
  if ! { cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=$type -DMCS_SANITIZE=$san >/dev/null &&
         cmake --build "$b" -j 2; }; then
    echo "test: build $b failed"
    echo "0 passed, 1 failed"
    exit 1
  fi
done

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

for b in build build-asan; do
  (cd "$b" && ctest -L unit --output-on-failure --output-junit "$OUT/ctest-$b.xml" -j 2) || fail=1
done

# The firmware core for Cortex-M4 (issue #11): compiles with -Werror and
# fits the STM32L4 budget (64 KB flash, 16 KB RAM), one test case.
if bash firmware/arm/build.sh >"$OUT/fw-arm.log" 2>&1; then
  cat "$OUT/fw-arm.log"
  printf '<testsuite name="fw-arm"><testcase name="fw_arm_build_size"/></testsuite>\n' >"$OUT/fw-arm.xml"
else
  cat "$OUT/fw-arm.log"; echo "test: firmware ARM build or size check failed"
  printf '<testsuite name="fw-arm"><testcase name="fw_arm_build_size"><failure message="see fw-arm.log"/></testcase></testsuite>\n' >"$OUT/fw-arm.xml"
  fail=1
fi

# Fuzzing (STYLE rule 15, docs/FUZZING.md): every tests/fuzz target for a
# bounded time from its seeds and what earlier runs kept in build-fuzz/fuzz.
# A crash fails the suite; run.sh prints the input that caused it.
fsecs=${MCS_TEST_FUZZ_SECONDS:-20}
if cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
     -DMCS_FUZZ=ON >/dev/null && cmake --build build-fuzz --target fuzzers -j 2; then
  (cd build-fuzz && FUZZ_SECONDS=$fsecs ctest -L fuzz --output-on-failure -j 2 \
     --timeout $((fsecs + 120)) --output-junit "$OUT/ctest-fuzz.xml") || fail=1
else
  echo "test: build build-fuzz failed"
  printf '<testsuite name="fuzz"><testcase name="build-fuzz"><failure message="%s"/></testcase></testsuite>\n' \
    "build-fuzz failed to build" >"$OUT/ctest-fuzz.xml"
  fail=1
fi

# Web app (docs/WEB.md): Vitest unit tests, then the Playwright end-to-end
# specs in Debian's Chromium against the real stack; both write junit XML.
MCS_TEST_RESULTS=$OUT bash scripts/web.sh build || {
  fail=1
  printf '<testsuite name="web"><testcase name="web build"><failure message="%s"/></testcase></testsuite>\n' \
    "scripts/web.sh build failed" >"$OUT/web-build.xml"
}
MCS_TEST_RESULTS=$OUT bash scripts/web.sh test || fail=1
MCS_BUILD_DIR=$ROOT/build MCS_TEST_RESULTS=$OUT bash scripts/web.sh e2e || fail=1

MCS_BUILD_DIR=$ROOT/build-asan MCS_BUILD_DIR_RELEASE=$ROOT/build \
  $PY -m pytest -p no:cacheprovider -q -rfE --junitxml="$OUT/pytest.xml" tests/integration
rc=$?
[ $rc -ne 0 ] && fail=1

# The TimescaleDB pass (issue #18): the storage, archive and history files
# again on a hypertable, against TimescaleDB built from ../shared/vendor by
# scripts/timescaledb.sh (once per machine, cached outside the tree), plus
# test_timescaledb.py, which runs only here.
# The build runs here, before pytest, whose service start has a time limit:
# 2-8 min on 2 cores the first time on a machine, nothing afterwards.
t0=$(date +%s)
if ! bash scripts/timescaledb.sh >"$OUT/timescaledb-build.log" 2>&1; then
  cat "$OUT/timescaledb-build.log"; echo "test: TimescaleDB build failed"
  printf '<testsuite name="timescaledb"><testcase name="timescaledb_build"><failure message="see timescaledb-build.log"/></testcase></testsuite>\n' >"$OUT/timescaledb-build.xml"
  fail=1
fi
echo "test: TimescaleDB ready after $(( $(date +%s) - t0 )) s"
MCS_PG_DIALECT=timescaledb MCS_BUILD_DIR=$ROOT/build-asan MCS_BUILD_DIR_RELEASE=$ROOT/build \
  $PY -m pytest -p no:cacheprovider -q -rfE --junitxml="$OUT/pytest-timescaledb.xml" \
  -o junit_suite_name=timescaledb tests/integration/test_timescaledb.py \
  tests/integration/test_ingest.py tests/integration/test_archive.py \
  tests/integration/test_archive_history.py tests/integration/test_archive_sched.py \
  tests/integration/test_backup_script.py tests/integration/test_ops_card.py
[ $? -ne 0 ] && fail=1

$PY scripts/summarize.py "$OUT"/*.xml || fail=1
exit $fail

#!/usr/bin/env bash
# run.sh - what `make bench` runs: every benchmark of the project, each figure
# on its own stdout line as `name: value` (diagnostics on stderr).
# Owns the run directory .run/bench-$$ and the services it starts there with
# scripts/svc.sh; stops them (and anything it started) on exit.
#
#   bash bench/run.sh [--quick]      BUILD_DIR=... to use another build
#                                    KEEP_RUN=1 keeps .run/bench-$$ (logs)
# Bounded: a watchdog stops the whole run after BENCH_TIMEOUT_S (420) seconds.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
RUN=$ROOT/.run/bench-$$
PY=/usr/bin/python3
QUICK=()
[ "${1:-}" = "--quick" ] && QUICK=(--quick)

log() { echo "bench: $*" >&2; }

cleanup() {
  local pid
  # A backstop: the Python driver stops mcsd itself, unless it was killed.
  if [ -f "$RUN/mcsd.pid" ]; then
    pid=$(cat "$RUN/mcsd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  bash "$ROOT/scripts/svc.sh" stop "$RUN" >/dev/null 2>&1 || true
  if [ "${KEEP_RUN:-0}" = 1 ]; then
    log "run directory kept: $RUN"
  else
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for exe in mcs-loadgen mcs-nullsub; do
  if [ ! -x "$BUILD/$exe" ]; then
    echo "error: $BUILD/$exe is not built (make build)"
    exit 1
  fi
done

# Many connections: raise the open-files limit for everything started here.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$ROOT/.run"
log "starting services in $RUN"
if ! bash "$ROOT/scripts/svc.sh" start "$RUN" >"$RUN.svc.log" 2>&1; then
  cat "$RUN.svc.log" >&2
  rm -f "$RUN.svc.log"
  echo "error: services did not start (scripts/svc.sh)"
  exit 1
fi
rm -f "$RUN.svc.log"

rc=0
# --- ingest: broker rate, end-to-end rate, commit latency, memory ----------
timeout -s TERM -k 30 "${BENCH_TIMEOUT_S:-420}" \
  "$PY" "$ROOT/bench/ingest_bench.py" --build "$BUILD" --run "$RUN" "${QUICK[@]}" || rc=$?
if [ "$rc" = 124 ]; then
  echo "error: benchmark timed out after ${BENCH_TIMEOUT_S:-420} s"
fi
timeout -s TERM -k 10 "${STORM_TIMEOUT_S:-240}" "$PY" "$ROOT/bench/connect_storm.py" --build "$BUILD" --run "$RUN" "${QUICK[@]}" || rc=$?  # issue 3: connect_storm_*
timeout -s TERM -k 10 "${ALARM_TIMEOUT_S:-240}" "$PY" "$ROOT/bench/alarm_bench.py" --build "$BUILD" --run "$RUN" "${QUICK[@]}" || rc=$?  # issue 7: alarm_notify_*, storm_*
bash "$ROOT/scripts/web.sh" bench || rc=$?  # issue 9: screen_load_kb, screen_busy_pct, screen_fps, alarm_screen_p99_ms, analyzer_day_s
exit "$rc"

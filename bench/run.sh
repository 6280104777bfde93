#!/usr/bin/env bash
# run.sh - what `make bench` runs: every benchmark group of the project (the
# table BENCH_GROUPS below), each figure on its own stdout line as `name: value`
# (diagnostics on stderr).
# Owns the run directory .run/bench-$$ and the services it starts there with
# scripts/svc.sh; stops them (and anything it started) on exit.
#
#   bash bench/run.sh [--quick]      BUILD_DIR=... to use another build
#                                    ONLY=ingest[,storm...] runs only those groups
#                                    KEEP_RUN=1 keeps .run/bench-$$ (logs)
# Bounded: each group by its own timeout, the whole run by BENCH_TOTAL_S
# (1140 s = 19 min): a group that would start with less than 30 s left is
# skipped with an `error:` line.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
RUN=$ROOT/.run/bench-$$
PY=/usr/bin/python3
QUICK=()
[ "${1:-}" = "--quick" ] && QUICK=(--quick)

# Benchmark groups, run in this order: name, script (relative to bench/;
# .py runs with Debian's python3, .sh with bash), timeout in seconds. Each
# script is called as `SCRIPT --build DIR --run DIR [--quick]` with the
# services of DIR/env already up (scripts/svc.sh), prints `name: value`
# lines on stdout (`error: ...` when it could not finish) and stops
# everything it started itself. To add a group: one line here
# (bench/README.md, "Groups").
BENCH_GROUPS="
ingest  ingest_bench.py   480
storm   connect_storm.py  240
archive archive_bench.py  300
sim     sim_bench.py      240
alarm   alarm_bench.py    240
api     api_bench.py      300
web     web_bench.sh      300
"

log() { echo "bench: $*" >&2; }

group_names() { echo "$BENCH_GROUPS" | awk 'NF >= 3 {print $1}' | paste -sd, -; }

# Checks ONLY before anything is started.
if [ -n "${ONLY:-}" ]; then
  for g in ${ONLY//,/ }; do
    if ! echo "$BENCH_GROUPS" | awk -v g="$g" 'NF >= 3 && $1 == g {f = 1} END {exit !f}'; then
      echo "error: no benchmark group '$g' (groups: $(group_names))"
      exit 2
    fi
  done
fi

cleanup() {
  local pid d
  # A backstop: the Python driver stops mcsd itself, unless it was killed.
  if [ -f "$RUN/mcsd.pid" ]; then
    pid=$(cat "$RUN/mcsd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  # Brokers the groups started in sub-directories (plugin/TLS brokers),
  # should a group have been killed before stopping its own.
  for d in "$RUN"/*/; do
    [ -f "$d/env" ] && [ -f "$d/mosquitto/pid" ] && bash "$ROOT/scripts/svc.sh" mqtt-stop "$d" >/dev/null 2>&1
  done
  bash "$ROOT/scripts/svc.sh" stop "$RUN" >/dev/null 2>&1 || true
  if [ "${KEEP_RUN:-0}" = 1 ]; then
    log "run directory kept: $RUN"
  else
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for exe in mcs-loadgen mcs-nullsub mcs-copysub mcs-wsdash mcsd; do
  if [ ! -x "$BUILD/$exe" ]; then
    echo "error: $BUILD/$exe is not built (make build)"
    exit 1
  fi
done

# Many connections: raise the open-files limit for everything started here.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

T0=$SECONDS
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
total=${BENCH_TOTAL_S:-1140}
while read -r -u 3 name script limit _; do
  [ -n "$name" ] || continue
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then
    continue
  fi
  left=$((total - (SECONDS - T0)))
  if [ "$left" -lt 30 ]; then
    echo "error: group $name not run: the whole-run budget BENCH_TOTAL_S=$total s is spent"
    rc=1
    continue
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  if [ ! -f "$ROOT/bench/$script" ]; then
    # A group listed before its branch is merged.
    log "group $name: bench/$script not present; skipped"
    continue
  fi
  case "$script" in
    *.py) cmd=("$PY" "$ROOT/bench/$script") ;;
    *.sh) cmd=(bash "$ROOT/bench/$script") ;;
    *) echo "error: group $name: $script is neither .py nor .sh"; rc=1; continue ;;
  esac
  log "group $name: $script (at most $limit s)"
  t=$SECONDS
  grc=0
  timeout -s TERM -k 30 "$limit" "${cmd[@]}" --build "$BUILD" --run "$RUN" "${QUICK[@]}" </dev/null || grc=$?
  if [ "$grc" = 124 ]; then
    echo "error: group $name timed out after $limit s"
  fi
  [ "$grc" = 0 ] || rc=1
  echo "bench_seconds_$name: $((SECONDS - t))"
done 3<<< "$BENCH_GROUPS"
echo "bench_seconds_total: $((SECONDS - T0))"
exit "$rc"

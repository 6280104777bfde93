#!/usr/bin/env bash
# web_bench.sh - group `web` of bench/run.sh (issue #9): the big screen and the
# archive analyzer measured in Debian's Chromium by scripts/web.sh bench
# (screen_load_kb, screen_busy_pct, screen_fps, alarm_screen_p99_ms,
# analyzer_day_s). run.sh's --build/--run arguments are not needed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/web.sh bench

#!/usr/bin/env bash
# web.sh - the web app (web/, Vue 3 + Vite) as `make build` and `make test`
# use it. npm packages come only from web/package-lock.json (npm ci).
#   web.sh deps    npm ci when node_modules is missing or older than the lock
#   web.sh build   deps, then types from docs/api/openapi.yaml, vite build → web/dist,
#                  and .gz/.br siblings of the hashed assets (scripts/precompress.mjs)
#   web.sh test    deps, vitest (junit → $OUT/vitest.xml)
#   web.sh e2e     built app + real stack, Playwright with Debian Chromium (junit → $OUT/e2e-*.xml)
#   web.sh bench   the web figures (screen_*, alarm_screen_p99_ms, analyzer_day_s) as name: value
set -euo pipefail
cd "$(dirname "$0")/../web"
OUT=${MCS_TEST_RESULTS:-$(pwd)/../build/test-results}

deps() {
  if ! command -v npm >/dev/null; then
    echo "web: npm is missing (scripts/deps.sh installs nodejs/npm)"; exit 1
  fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "web: npm ci"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
  fi
}

# Types, bundle, then the precompressed siblings mcs-api serves.
build() {
  node scripts/gen-api.mjs >/dev/null
  npx vite build --logLevel warn
  node scripts/precompress.mjs
}

case "${1:-build}" in
  deps) deps ;;
  build)
    deps
    build
    ;;
  test)
    deps
    mkdir -p "$OUT"
    node scripts/gen-api.mjs >/dev/null
    npx vitest run --reporter=default --reporter=junit --outputFile.junit="$OUT/vitest.xml"
    ;;
  e2e)
    deps
    mkdir -p "$OUT"
    [ -f dist/index.html ] || build
    rm -f "$OUT"/e2e-*.xml
    rc=0
    MCS_TEST_RESULTS="$OUT" node tests/e2e/run.mjs || rc=$?
    # A runner that died before writing its results still counts as a failure.
    if [ $rc -ne 0 ] && ! ls "$OUT"/e2e-*.xml >/dev/null 2>&1; then
      printf '<testsuite name="e2e"><testcase name="e2e runner"><failure message="exit %s"/></testcase></testsuite>\n' \
        "$rc" >"$OUT/e2e-runner.xml"
    fi
    exit $rc
    ;;
  bench)
    deps
    [ -f dist/.vite/manifest.json ] || build
    node tests/bench/web_bench.mjs
    ;;
  *) echo "usage: web.sh deps|build|test|e2e|bench"; exit 2 ;;
esac

#!/usr/bin/env bash
# demo-license.sh - a license for the demo, the tests and the benches
# (issue #17): signed with the DEMO vendor key of deploy/demo, which every
# build trusts unless it was given its own key (-DMCS_LICENSE_PUBKEY).
#   demo-license.sh DIR [MCS_LICENSE]
# Writes DIR/license/license.key once (valid ten years, 1,000,000 devices)
# and prints its path. MCS_LICENSE: the mcs-license binary (default
# build/mcs-license, else build-asan/mcs-license).
set -euo pipefail
DIR=${1:?run directory}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${2:-}
if [ -z "$BIN" ]; then
  for b in "$REPO/build/mcs-license" "$REPO/build-asan/mcs-license"; do
    [ -x "$b" ] && { BIN=$b; break; }
  done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "demo-license: mcs-license not built" >&2; exit 1; }
mkdir -p "$DIR/license"
LIC=$DIR/license/license.key
if [ ! -s "$LIC" ] || ! "$BIN" check "$LIC" >/dev/null 2>&1; then
  rm -f "$LIC"
  "$BIN" issue --sk "$REPO/deploy/demo/license-vendor-demo.sk" --db "$DIR/license/vendor-demo.db" \
    --customer "演示工厂 Demo plant" --max-devices 1000000 \
    --expires "$(date -u -d '+10 years' +%Y-%m-%d)" --out "$LIC" >/dev/null
fi
echo "$LIC"

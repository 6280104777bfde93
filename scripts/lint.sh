#!/usr/bin/env bash
# lint.sh - rejects unsafe libc calls (STYLE rule 13) in our C sources.
# Exit status 1 with file:line for every hit.
set -u
cd "$(dirname "$0")/.."
banned='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\('
hits=$(grep -rnE "$banned" --include='*.c' --include='*.h' src bench tests firmware 2>/dev/null \
       | grep -vE '//.*lint-ok|/\*.*lint-ok' || true)
if [ -n "$hits" ]; then
  echo "lint: banned functions (use snprintf, memcpy with sizes, strtol):"
  echo "$hits"
  exit 1
fi
echo "lint: ok"

#!/usr/bin/env bash
# deps.sh - installs what this project needs and is missing (Debian 12).
# Idempotent and quiet when everything is present; never asks questions.
set -euo pipefail

PKGS=(
  gcc make cmake pkg-config git ca-certificates openssl procps iproute2
  mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
  postgresql-15 postgresql-client-15 libpq-dev
  postgresql-server-dev-15
  nginx
  redis-server redis-tools libhiredis-dev
  libcjson-dev libcmocka-dev libsodium-dev zlib1g-dev libssl-dev
  libcurl4-openssl-dev libxml2-dev curl
  python3 python3-pytest python3-paho-mqtt python3-psycopg2 python3-redis
  python3-requests python3-aiosmtpd
  clang libclang-rt-14-dev
  gcc-arm-none-eabi libnewlib-arm-none-eabi
  libwebsockets-dev libjwt-dev libxlsxwriter-dev python3-websocket python3-yaml wrk
  chromium fonts-wqy-microhei
)

# Node/npm for the S3 test server (tests/s3, issue #10) unless present.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# The server headers (TimescaleDB's build, scripts/timescaledb.sh) at the
# version of the installed server: installing the newest would upgrade
# postgresql-15 in place under running servers, which then fail to load
# plpgsql.so (../shared/PLATFORM.md).
pgver=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
for i in "${!missing[@]}"; do
  if [ "${missing[$i]}" = postgresql-server-dev-15 ] && [ -n "$pgver" ]; then
    missing[$i]="postgresql-server-dev-15=$pgver"
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3-compatible test server of the archive tests (tests/s3/package-lock.json).
S3T=$(cd "$(dirname "$0")/.." && pwd)/tests/s3
if [ -f "$S3T/package-lock.json" ] && [ ! -d "$S3T/node_modules/@20minutes/s3rver" ]; then
  (cd "$S3T" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

#!/usr/bin/env bash
# timescaledb.sh - builds TimescaleDB (the upstream source in
# ../shared/vendor, or MCS_TIMESCALEDB_SRC) into a machine-local cache and
# prints the bin directory of a private PostgreSQL 15 tree that loads it.
# Never touches the system's /usr/lib/postgresql or /usr/share/postgresql
# and never writes into the repository. The build runs once per machine
# (per PostgreSQL minor version and tarball); concurrent callers wait on a
# lock and reuse it.
#
#   timescaledb.sh            build if needed, print the private bin dir
#   timescaledb.sh --check    print the bin dir if built, else exit 1
#
# Environment:
#   MCS_TIMESCALEDB_SRC    the tarball (default <repo>/../shared/vendor/timescaledb-2.28.3.tar.gz)
#   MCS_TIMESCALEDB_CACHE  the cache root (default /var/cache/mcs-iot, else ~/.cache/mcs-iot)
#
# PostgreSQL 15 has no extension search path setting, so the private tree is
# a copy of Debian's (PostgreSQL finds share/ beside bin/) with the extension
# installed into it by `make install DESTDIR=`.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=${MCS_TIMESCALEDB_SRC:-$REPO/../shared/vendor/timescaledb-2.28.3.tar.gz}
SHA256=ec2f7de0ba53a473c01e0a57e09053898c6b1f7487228caff0f1d31c8cb2dedb
PGCONFIG=/usr/lib/postgresql/15/bin/pg_config

if [ -z "${MCS_TIMESCALEDB_CACHE:-}" ]; then
  if mkdir -p /var/cache/mcs-iot 2>/dev/null && [ -w /var/cache/mcs-iot ]; then
    MCS_TIMESCALEDB_CACHE=/var/cache/mcs-iot
  else
    MCS_TIMESCALEDB_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mcs-iot
  fi
fi

die() { echo "timescaledb.sh: $*" >&2; exit 1; }

[ -x "$PGCONFIG" ] || die "no $PGCONFIG: run scripts/deps.sh (postgresql-server-dev-15)"
# The system's server version: a private tree copied from another minor
# version would load the system's libraries inconsistently, so it is a key.
PGVER=$($PGCONFIG --version | awk '{print $2}')
TSVER=$(basename "$SRC" .tar.gz); TSVER=${TSVER#timescaledb-}
X=$MCS_TIMESCALEDB_CACHE/pgts-$TSVER-pg$PGVER
BIN=$X/usr/lib/postgresql/15/bin

if [ -f "$X/.done" ]; then echo "$BIN"; exit 0; fi
[ "${1:-}" = --check ] && exit 1

[ -f "$SRC" ] || die "no TimescaleDB source at $SRC (set MCS_TIMESCALEDB_SRC)"
echo "$SHA256  $SRC" | sha256sum -c --status - || die "$SRC does not match its SHA-256"

mkdir -p "$MCS_TIMESCALEDB_CACHE"
exec 9>"$MCS_TIMESCALEDB_CACHE/pgts.lock"
flock 9
if [ -f "$X/.done" ]; then echo "$BIN"; exit 0; fi

t0=$(date +%s)
rm -rf "$X" && mkdir -p "$X/usr/lib/postgresql" "$X/usr/share/postgresql"
cp -a /usr/lib/postgresql/15 "$X/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$X/usr/share/postgresql/"
tar xzf "$SRC" -C "$X"
(
  cd "$X/timescaledb-$TSVER"
  ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
    -DLINTER=OFF -DGENERATE_DOWNGRADE_SCRIPT=OFF -DPG_CONFIG="$PGCONFIG" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$X/build.log" 2>&1
  make -C build -j2 >>"$X/build.log" 2>&1
  make -C build install DESTDIR="$X" >>"$X/build.log" 2>&1
) || die "build failed, see $X/build.log"
# The install writes into DESTDIR + the system paths; the private tree is
# exactly those paths under $X.
[ -f "$X/usr/lib/postgresql/15/lib/timescaledb.so" ] || die "timescaledb.so not installed under $X"
[ -f "$X/usr/share/postgresql/15/extension/timescaledb.control" ] || die "control file not installed under $X"
rm -rf "$X/timescaledb-$TSVER"
echo "built in $(( $(date +%s) - t0 )) s" >>"$X/build.log"
touch "$X/.done"
echo "$BIN"

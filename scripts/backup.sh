#!/usr/bin/env bash
# backup.sh - a whole-plant backup of a native install (issue #18, R-OP-5):
# the database (pg_dump -Fc), the configuration and the secrets (/etc/mcs:
# mcs.env with DB_PASS, JWT_SECRET, VENDOR_SECRET..., MCS_SECRET_KEY_FILE,
# tls/) and the broker's mosquitto.conf, in one tar file with SHA-256 sums,
# mode 0600. mcsd's weekly job backs up the database alone to the bucket
# (docs/ARCHIVE.md); this one is what a rebuilt machine needs.
#
#   backup.sh backup  [--env-file F] [--etc DIR] [--mosquitto-conf F] [--out DIR]
#   backup.sh restore FILE [--env-file F] [--etc DIR] [--mosquitto-conf F] [--dbname NAME]
#
# Defaults: --env-file /etc/mcs/mcs.env, --etc /etc/mcs, --mosquitto-conf
# /etc/mosquitto/mosquitto.conf (skipped when absent), --out /var/backups/mcs.
# The database comes from DB_HOST DB_PORT DB_NAME DB_USER DB_PASS in the env
# file (read as KEY=VALUE lines, never executed); pg_dump/pg_restore from
# PG_BIN_DIR there, else PATH. Restore checks the sums, puts the files back
# (the env file last read from the backup itself), creates the database if
# missing and refuses one that already holds tables; on a server that
# preloads TimescaleDB it wraps pg_restore in timescaledb_pre_restore() /
# timescaledb_post_restore(). Stop mcsd and mcs-api before a restore.
# BACKUP_PASSPHRASE (environment) encrypts the file with openssl AES-256
# (PBKDF2) and is needed again to restore.
set -euo pipefail
work=""
trap '[ -n "$work" ] && rm -rf "$work"' EXIT

die() { echo "backup.sh: $*" >&2; exit 1; }

cmd=${1:-}; shift || true
file=""
if [ "$cmd" = restore ]; then file=${1:?backup.sh restore FILE}; shift; fi
ENVF=/etc/mcs/mcs.env ETC=/etc/mcs MQCONF=/etc/mosquitto/mosquitto.conf OUT=/var/backups/mcs
DBNAME=""
while [ $# -gt 0 ]; do
  case "$1" in
    --env-file) ENVF=$2; shift 2 ;;
    --etc) ETC=$2; shift 2 ;;
    --mosquitto-conf) MQCONF=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --dbname) DBNAME=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done

# One value of the env file: the last KEY=VALUE line, quotes removed.
envval() {
  local v
  v=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$1=" "$2" 2>/dev/null | tail -n 1 | sed -E "s/^[^=]*=//") || true
  v=${v%$'\r'}
  case "$v" in \"*\") v=${v#\"}; v=${v%\"} ;; \'*\') v=${v#\'}; v=${v%\'} ;; esac
  printf '%s' "$v"
}

load_db() {
  [ -r "$1" ] || die "cannot read env file $1"
  DB_HOST=$(envval DB_HOST "$1"); DB_HOST=${DB_HOST:-127.0.0.1}
  DB_PORT=$(envval DB_PORT "$1"); DB_PORT=${DB_PORT:-5432}
  DB_NAME=$(envval DB_NAME "$1"); DB_NAME=${DB_NAME:-mcs_iot}
  DB_USER=$(envval DB_USER "$1"); DB_USER=${DB_USER:-mcs_admin}
  PGPASSWORD=$(envval DB_PASS "$1"); export PGPASSWORD
  local b; b=$(envval PG_BIN_DIR "$1")
  PGB=${b:+$b/}
}

psqlq() {
  "${PGB}psql" -X -q -t -A -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" "$@"
}

do_backup() {
  load_db "$ENVF"
  local stamp name
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  name=mcs-backup-$stamp
  mkdir -p "$OUT"; chmod 700 "$OUT"
  work=$(mktemp -d "$OUT/.work.XXXXXX")
  umask 077
  mkdir -p "$work/$name/etc"
  "${PGB}pg_dump" -Fc -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d "$DB_NAME" \
    -f "$work/$name/db.dump" || die "pg_dump failed"
  [ -d "$ETC" ] && cp -a "$ETC/." "$work/$name/etc/"
  # An env file outside the etc directory travels too.
  case "$(readlink -f "$ENVF")" in
    "$(readlink -f "$ETC")"/*) ;;
    *) cp -a "$ENVF" "$work/$name/env-file" ;;
  esac
  [ -f "$MQCONF" ] && cp -a "$MQCONF" "$work/$name/mosquitto.conf"
  {
    echo "created=$stamp"
    echo "db_name=$DB_NAME"
    echo "server=$(psqlq -d "$DB_NAME" -c 'SHOW server_version')"
    echo "timescaledb=$(psqlq -d "$DB_NAME" -c "SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '')")"
    echo "migration=$(psqlq -d "$DB_NAME" -c 'SELECT max(version) FROM schema_migrations')"
  } > "$work/$name/MANIFEST"
  (cd "$work/$name" && find . -type f ! -name SHA256SUMS -print0 | sort -z |
     xargs -0 sha256sum > SHA256SUMS)
  local dest=$OUT/$name.tar
  tar -C "$work" -cf "$dest.tmp" "$name"
  if [ -n "${BACKUP_PASSPHRASE:-}" ]; then
    openssl enc -aes-256-cbc -pbkdf2 -salt -pass env:BACKUP_PASSPHRASE \
      -in "$dest.tmp" -out "$dest.enc.tmp"
    rm -f "$dest.tmp"; dest=$dest.enc; mv "$dest.tmp" "$dest"
  else
    mv "$dest.tmp" "$dest"
  fi
  chmod 600 "$dest"
  echo "$dest"
}

do_restore() {
  [ -r "$file" ] || die "cannot read $file"
  local dir
  work=$(mktemp -d)
  if [ "${file%.enc}" != "$file" ]; then
    [ -n "${BACKUP_PASSPHRASE:-}" ] || die "$file is encrypted: set BACKUP_PASSPHRASE"
    openssl enc -d -aes-256-cbc -pbkdf2 -pass env:BACKUP_PASSPHRASE -in "$file" \
      -out "$work/b.tar" || die "cannot decrypt $file"
    tar -C "$work" -xf "$work/b.tar"
  else
    tar -C "$work" -xf "$file"
  fi
  dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'mcs-backup-*' | head -n 1)
  [ -n "$dir" ] || die "$file is no MCS backup"
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "$file is damaged (SHA-256 mismatch)"

  # Configuration and secrets first: the env file names the database.
  mkdir -p "$ETC"; chmod 750 "$ETC"
  cp -a "$dir/etc/." "$ETC/"
  [ -f "$dir/env-file" ] && { mkdir -p "$(dirname "$ENVF")"; cp -a "$dir/env-file" "$ENVF"; }
  [ -f "$dir/mosquitto.conf" ] && [ -d "$(dirname "$MQCONF")" ] && cp -a "$dir/mosquitto.conf" "$MQCONF"
  load_db "$ENVF"
  local db=${DBNAME:-$DB_NAME}
  if [ "$(psqlq -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ]; then
    "${PGB}createdb" -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" "$db"
  fi
  [ "$(psqlq -d "$db" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] ||
    die "database $db already holds tables: restore into an empty one (--dbname)"
  local ts
  ts=$(psqlq -d "$db" -c "SELECT current_setting('shared_preload_libraries') ~ '(^|[[:space:],\"])timescaledb(\$|[[:space:],\"])'")
  if [ "$ts" = t ]; then
    psqlq -d "$db" -c "CREATE EXTENSION IF NOT EXISTS timescaledb" -c "SELECT timescaledb_pre_restore()" >/dev/null
  fi
  local rc=0
  "${PGB}pg_restore" --no-owner --exit-on-error -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" \
    -d "$db" "$dir/db.dump" || rc=$?
  [ "$ts" = t ] && psqlq -d "$db" -c "SELECT timescaledb_post_restore()" >/dev/null
  [ $rc -eq 0 ] || die "pg_restore failed ($rc)"
  echo "restored $(grep '^created=' "$dir/MANIFEST" | cut -d= -f2) into database $db and $ETC"
}

case "$cmd" in
  backup) do_backup ;;
  restore) do_restore ;;
  *) die "usage: backup.sh backup|restore FILE [options] (see the header)" ;;
esac

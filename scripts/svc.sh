#!/usr/bin/env bash
# svc.sh - project-local Mosquitto, PostgreSQL 15 and Redis on free loopback
# ports under one run directory. Used by `make demo`, the tests and benches.
#
#   svc.sh start DIR        start all three; writes DIR/env (sourceable)
#   svc.sh stop DIR         stop all three
#   svc.sh pg-stop DIR | pg-start DIR | redis-stop DIR | redis-start DIR
#   svc.sh mqtt-stop DIR | mqtt-start DIR
#
# DIR/env holds DB_*, REDIS_*, MQTT_* (plain loopback listener), MQTT_TLS_PORT
# and MQTT_CAFILE (TLS listener with a CA generated here).
#
# Broker authentication is opt-in, chosen by MCS_BROKER_AUTH at `start` (or
# `mqtt-start`) and remembered in DIR/env as MQTT_AUTH, so that a later
# mqtt-stop/mqtt-start keeps it. Without it the broker is anonymous, as the
# demo and most tests expect.
#   MCS_BROKER_AUTH=plugin  load the mcs_auth plugin (docs/PLUGIN.md):
#       MCS_AUTH_PLUGIN      the .so (default <repo>/build/mcs_auth.so)
#       MCS_CLI              `mcs` for the Argon2id hashes (default: beside
#                            the plugin, else <repo>/build/mcs)
#       MCS_AUTH_PLUGIN_OPTS extra "name=value ..." plugin options
#       MCS_BROKER_PRELOAD   LD_PRELOAD for the broker (an ASan-built plugin
#                            needs the sanitizer runtimes loaded first)
#     DIR/env gains MQTT_AUTH=plugin, WORKER_PASS, ADMIN_PASS, MCSD_PASS
#     (mcsd's own account: MQTT_USER=mcsd, client id mcsd-*) and
#     VENDOR_SECRET (random, generated once per DIR).
#   MCS_BROKER_AUTH=passwd  the classic static files: password_file (hashed
#     with mosquitto_passwd -U from DIR/mosquitto/passwd.plain "user:password"
#     lines, if the caller wrote any, plus worker, admin and mcsd) and an acl_file
#     with pattern rules (a device's client id is its serial number).
#
# PostgreSQL flavour, chosen by MCS_PG_DIALECT at the first `start` of DIR and
# remembered in DIR/env as PG_DIALECT and PG_SERVER_BIN (issue #18):
#   native (default)        Debian's PostgreSQL 15
#   timescaledb             a private PostgreSQL tree with TimescaleDB built
#                           by scripts/timescaledb.sh (once per machine, ~2-5
#                           min) and shared_preload_libraries = timescaledb
#   timescaledb-nopreload   the same tree without the preload: the extension
#                           is available but CREATE EXTENSION would fail
set -euo pipefail

cmd=${1:?usage: svc.sh start|stop|pg-stop|pg-start|... DIR}
DIR=${2:?run directory}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

gen_certs() {
  local d=$DIR/tls
  [ -f "$d/server.crt" ] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=MCS-IoT dev CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$d/san.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
    -CAcreateserial -days 3650 -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
  chmod 644 "$d"/*.key
}

pg_start() {
  # shellcheck disable=SC1091
  . "$DIR/env"
  PGBIN=${PG_SERVER_BIN:-$PGBIN}
  if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    mkdir -p "$DIR/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DIR/pg"
    as_pg $PGBIN/initdb -D "$DIR/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$DIR/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $DB_PORT
unix_socket_directories = '$DIR/pg'
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
CONF
    if [ "${PG_DIALECT:-native}" = timescaledb ]; then
      printf "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n" \
        >> "$DIR/pg/postgresql.conf"
    fi
    NEWDB=1
  fi
  [ "$(id -u)" -eq 0 ] && chmod 755 "$DIR"
  as_pg $PGBIN/pg_ctl -D "$DIR/pg" status >/dev/null 2>&1 && return 0
  as_pg $PGBIN/pg_ctl -D "$DIR/pg" -l "$DIR/pg/log" -w -t 60 start >/dev/null
  if [ "${NEWDB:-0}" = 1 ]; then
    psql -h 127.0.0.1 -p "$DB_PORT" -U postgres -q -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE $DB_USER LOGIN SUPERUSER" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
  fi
}

pg_stop() {
  [ -f "$DIR/pg/postmaster.pid" ] || return 0
  # shellcheck disable=SC1091
  . "$DIR/env"
  PGBIN=${PG_SERVER_BIN:-$PGBIN}
  as_pg $PGBIN/pg_ctl -D "$DIR/pg" -m fast -w -t 60 stop >/dev/null || true
}

redis_start() {
  # shellcheck disable=SC1091
  . "$DIR/env"
  mkdir -p "$DIR/redis"
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR/redis" --daemonize yes \
    --pidfile "$DIR/redis/pid" --logfile "$DIR/redis/log" --save '' --appendonly no >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "svc: redis did not start" >&2
  return 1
}

kill_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

redis_stop() { kill_pidfile "$DIR/redis/pid"; }

# Writes MQTT_AUTH=<mode> and, once per DIR, the client secrets into DIR/env.
auth_env() {
  local mode=$1
  if grep -q "^MQTT_AUTH=$mode\$" "$DIR/env"; then
    :
  elif grep -q '^MQTT_AUTH=' "$DIR/env"; then
    sed -i "s/^MQTT_AUTH=.*/MQTT_AUTH=$mode/" "$DIR/env"
  else
    echo "MQTT_AUTH=$mode" >> "$DIR/env"
  fi
  grep -q '^WORKER_PASS=' "$DIR/env" || echo "WORKER_PASS=$(openssl rand -hex 16)" >> "$DIR/env"
  grep -q '^ADMIN_PASS=' "$DIR/env" || echo "ADMIN_PASS=$(openssl rand -hex 16)" >> "$DIR/env"
  grep -q '^MCSD_PASS=' "$DIR/env" || echo "MCSD_PASS=$(openssl rand -hex 16)" >> "$DIR/env"
  grep -q '^VENDOR_SECRET=' "$DIR/env" || echo "VENDOR_SECRET=$(openssl rand -hex 16)" >> "$DIR/env"
}

# Prints the mcs_auth lines of mosquitto.conf (plugin mode).
plugin_conf() {
  local plugin=${MCS_AUTH_PLUGIN:-$REPO/build/mcs_auth.so} cli kv wh ah mh
  cli=${MCS_CLI:-}
  [ -z "$cli" ] && [ -x "$(dirname "$plugin")/mcs" ] && cli=$(dirname "$plugin")/mcs
  [ -z "$cli" ] && cli=$REPO/build/mcs
  if [ ! -f "$plugin" ] || [ ! -x "$cli" ]; then
    echo "svc: plugin mode needs $plugin and $cli (build them first)" >&2
    return 1
  fi
  # Argon2id hashes, made once per DIR: only they reach mosquitto.conf.
  if ! grep -qs '^MH=' "$DIR/mosquitto/auth.hashes"; then
    wh=$(printf '%s\n' "$WORKER_PASS" | "$cli" hash-password)
    ah=$(printf '%s\n' "$ADMIN_PASS" | "$cli" hash-password)
    mh=$(printf '%s\n' "$MCSD_PASS" | "$cli" hash-password)
    printf 'WH=%s\nAH=%s\nMH=%s\n' "$wh" "$ah" "$mh" > "$DIR/mosquitto/auth.hashes"
  fi
  wh=$(sed -n 's/^WH=//p' "$DIR/mosquitto/auth.hashes")
  ah=$(sed -n 's/^AH=//p' "$DIR/mosquitto/auth.hashes")
  mh=$(sed -n 's/^MH=//p' "$DIR/mosquitto/auth.hashes")
  cat <<CONF
# Authentication and ACL: the mcs_auth plugin (docs/PLUGIN.md).
allow_anonymous false
plugin $plugin
plugin_opt_db_host $DB_HOST
plugin_opt_db_port $DB_PORT
plugin_opt_db_name $DB_NAME
plugin_opt_db_user $DB_USER
plugin_opt_redis_host $REDIS_HOST
plugin_opt_redis_port $REDIS_PORT
plugin_opt_vendor_secret $VENDOR_SECRET
plugin_opt_prefix ${MQTT_TOPIC_PREFIX:-mcs}
plugin_opt_worker_hash $wh
plugin_opt_admin_hash $ah
plugin_opt_mcsd_hash $mh
plugin_opt_snapshot_file $DIR/mosquitto/mcs_auth.devtab
CONF
  [ -n "${DB_PASS:-}" ] && echo "plugin_opt_db_pass $DB_PASS"
  for kv in ${MCS_AUTH_PLUGIN_OPTS:-}; do
    echo "plugin_opt_${kv%%=*} ${kv#*=}"
  done
}

# Prints the password_file/acl_file lines (passwd mode), making both files.
passwd_conf() {
  local d=$DIR/mosquitto p=${MQTT_TOPIC_PREFIX:-mcs}
  if [ ! -f "$d/passwd" ] || [ "$d/passwd.plain" -nt "$d/passwd" ] || [ "$DIR/env" -nt "$d/passwd" ]; then
    { [ -f "$d/passwd.plain" ] && cat "$d/passwd.plain"
      echo "worker:$WORKER_PASS"
      echo "admin:$ADMIN_PASS"
      echo "mcsd:$MCSD_PASS"; } > "$d/passwd.tmp"
    mosquitto_passwd -U "$d/passwd.tmp"
    chmod 600 "$d/passwd.tmp"
    mv "$d/passwd.tmp" "$d/passwd"
  fi
  cat > "$d/acl" <<ACL
# Generated by scripts/svc.sh (passwd mode). Devices: client id = serial number.
pattern write $p/%c/up
pattern write $p/%c/status
pattern read $p/%c/cmd
pattern read $p/broadcast/cmd
user worker
topic read $p/+/up
topic read $p/+/status
topic write $p/+/cmd
topic write $p/broadcast/cmd
user admin
topic readwrite $p/#
user mcsd
topic read $p/+/up
topic read $p/+/status
topic write $p/+/cmd
topic write $p/broadcast/cmd
ACL
  cat <<CONF
# Authentication and ACL: static files (the baseline the plugin replaces).
allow_anonymous false
password_file $d/passwd
acl_file $d/acl
CONF
}

mqtt_start() {
  local mode
  # shellcheck disable=SC1091
  . "$DIR/env"
  mkdir -p "$DIR/mosquitto"
  if [ -f "$DIR/mosquitto/pid" ] && kill -0 "$(cat "$DIR/mosquitto/pid")" 2>/dev/null; then
    return 0
  fi
  mode=${MCS_BROKER_AUTH:-${MQTT_AUTH:-}}
  case "$mode" in
    ''|none) mode= ;;
    plugin|passwd)
      gen_certs
      auth_env "$mode"
      # shellcheck disable=SC1091
      . "$DIR/env" ;;
    *) echo "svc: MCS_BROKER_AUTH must be plugin, passwd or none, not '$mode'" >&2; return 2 ;;
  esac
  cat > "$DIR/mosquitto/mosquitto.conf" <<CONF
# Generated by scripts/svc.sh for development and tests.
user root
pid_file $DIR/mosquitto/pid
persistence true
persistence_location $DIR/mosquitto/
log_dest file $DIR/mosquitto/log
log_type error
log_type warning
per_listener_settings false
allow_anonymous true
max_queued_messages 1000000
max_inflight_messages 1000
# Devices publish telemetry at QoS 0 (R-MQ-1); mcsd subscribes at QoS 1.
# Delivered at the subscription's QoS, every reading to mcsd is acknowledged
# only after mcsd journaled it, and is queued for mcsd's persistent session
# while mcsd is down (restart, upgrade, crash): nothing is lost (issue #6).
# Not queue_qos0_messages: with it, Mosquitto 2.0.11 lost one or two QoS 1
# messages in flight to a client that reconnected (tests/integration/
# test_durability.py::test_spool_bound_with_database_down, 3 runs of 3).
upgrade_outgoing_qos true
set_tcp_nodelay true
sys_interval 2
# Internal plain listener: loopback only (R-MQ-6).
listener $MQTT_PORT 127.0.0.1
# External listener with TLS 1.2+ and a project-generated CA.
listener $MQTT_TLS_PORT 127.0.0.1
cafile $DIR/tls/ca.crt
certfile $DIR/tls/server.crt
keyfile $DIR/tls/server.key
tls_version tlsv1.2
CONF
  if [ "$mode" = plugin ]; then
    plugin_conf >> "$DIR/mosquitto/mosquitto.conf"
    sed -i 's/^allow_anonymous true$/# allow_anonymous: see below/' "$DIR/mosquitto/mosquitto.conf"
  elif [ "$mode" = passwd ]; then
    passwd_conf >> "$DIR/mosquitto/mosquitto.conf"
    sed -i 's/^allow_anonymous true$/# allow_anonymous: see below/' "$DIR/mosquitto/mosquitto.conf"
  fi
  ulimit -n 20000 2>/dev/null || true
  if [ -n "$mode" ] && [ -n "${MCS_BROKER_PRELOAD:-}" ]; then
    LD_PRELOAD=$MCS_BROKER_PRELOAD mosquitto -c "$DIR/mosquitto/mosquitto.conf" -d 2>>"$DIR/mosquitto/stderr"
  elif [ -n "$mode" ]; then
    mosquitto -c "$DIR/mosquitto/mosquitto.conf" -d 2>>"$DIR/mosquitto/stderr"
  else
    mosquitto -c "$DIR/mosquitto/mosquitto.conf" -d 2>/dev/null
  fi
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$MQTT_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "svc: mosquitto did not start (see $DIR/mosquitto/log)" >&2
  return 1
}

mqtt_stop() { kill_pidfile "$DIR/mosquitto/pid"; }

case "$cmd" in
  start)
    if [ ! -f "$DIR/env" ]; then
      cat > "$DIR/env" <<ENV
# Generated by scripts/svc.sh: the project-local services of this run.
RUN_DIR=$DIR
DB_HOST=127.0.0.1
DB_PORT=$(free_port)
DB_NAME=mcs_iot
DB_USER=mcs_admin
DB_PASS=
REDIS_HOST=127.0.0.1
REDIS_PORT=$(free_port)
MQTT_HOST=127.0.0.1
MQTT_PORT=$(free_port)
MQTT_TLS_PORT=$(free_port)
MQTT_CAFILE=$DIR/tls/ca.crt
ENV
      case "${MCS_PG_DIALECT:-native}" in
        native) ;;
        timescaledb|timescaledb-nopreload)
          tsbin=$(bash "$REPO/scripts/timescaledb.sh") || { rm -f "$DIR/env"; exit 1; }
          printf 'PG_DIALECT=%s\nPG_SERVER_BIN=%s\n' "$MCS_PG_DIALECT" "$tsbin" >> "$DIR/env" ;;
        *) echo "svc.sh: MCS_PG_DIALECT must be native, timescaledb or timescaledb-nopreload" >&2
           rm -f "$DIR/env"; exit 2 ;;
      esac
    fi
    gen_certs
    pg_start
    redis_start
    mqtt_start
    ;;
  stop) mqtt_stop; redis_stop; pg_stop ;;
  pg-start) pg_start ;;
  pg-stop) pg_stop ;;
  redis-start) redis_start ;;
  redis-stop) redis_stop ;;
  mqtt-start) mqtt_start ;;
  mqtt-stop) mqtt_stop ;;
  *) echo "svc.sh: unknown command $cmd" >&2; exit 2 ;;
esac

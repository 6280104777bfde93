/* config.c - the typed configuration table and its loaders.
 * Owns parsing of .env/environment/--set; touches no other module's state.
 * Thread: main thread at start-up only. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "err.h"
#include "log.h"
#include "numparse.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define F(field) offsetof(struct mcs_config, field), sizeof(((struct mcs_config *)0)->field)

/* name, type, field, min, max, default, secret, help */
const struct mcs_cfg_entry mcs_cfg_table[] = {
    {"DB_HOST", MCS_CFG_STR, F(db_host), 1, 0, "127.0.0.1", 0, "PostgreSQL host or socket directory"},
    {"DB_PORT", MCS_CFG_INT, F(db_port), 1, 65535, "5432", 0, "PostgreSQL port"},
    {"DB_NAME", MCS_CFG_STR, F(db_name), 1, 0, "mcs_iot", 0, "database name"},
    {"DB_USER", MCS_CFG_STR, F(db_user), 1, 0, "mcs_admin", 0, "database user"},
    {"DB_PASS", MCS_CFG_STR, F(db_pass), 0, 0, "", 1, "database password"},
    {"REDIS_HOST", MCS_CFG_STR, F(redis_host), 1, 0, "127.0.0.1", 0, "Redis host"},
    {"REDIS_PORT", MCS_CFG_INT, F(redis_port), 1, 65535, "6379", 0, "Redis port"},
    {"REDIS_PASS", MCS_CFG_STR, F(redis_pass), 0, 0, "", 1, "Redis password (AUTH)"},
    {"MQTT_HOST", MCS_CFG_STR, F(mqtt_host), 1, 0, "127.0.0.1", 0, "MQTT broker host (internal listener)"},
    {"MQTT_PORT", MCS_CFG_INT, F(mqtt_port), 1, 65535, "1883", 0, "MQTT broker port"},
    {"MQTT_USER", MCS_CFG_STR, F(mqtt_user), 0, 0, "mcsd", 0, "MQTT user name of mcsd (its own broker account, issue #6)"},
    {"MQTT_PASS", MCS_CFG_STR, F(mqtt_pass), 0, 0, "", 1, "MQTT password of that account"},
    {"MQTT_TOPIC_PREFIX", MCS_CFG_STR, F(mqtt_prefix), 1, 0, "mcs", 0, "topic prefix (R-MQ-1)"},
    {"MQTT_SHARE_GROUP", MCS_CFG_STR, F(mqtt_share_group), 1, 0, "mcsd", 0, "shared-subscription group"},
    {"MQTT_KEEPALIVE", MCS_CFG_INT, F(mqtt_keepalive), 5, 3600, "60", 0, "keep-alive seconds"},
    {"MQTT_TLS_CAFILE", MCS_CFG_STR, F(mqtt_cafile), 0, 0, "", 0, "CA file: when set the worker connects to the broker with TLS"},
    {"INSTANCE_ID", MCS_CFG_STR, F(instance_id), 1, 0, "mcsd-1", 0, "stable id of this instance: MQTT client id and spool checkpoint key"},
    {"LOG_LEVEL", MCS_CFG_STR, F(log_level), 1, 0, "INFO", 0, "ERROR, WARN, INFO or DEBUG"},
    {"TZ", MCS_CFG_STR, F(tz), 1, 0, "Asia/Shanghai", 0, "plant time zone"},
    {"DATA_RETENTION_DAYS", MCS_CFG_INT, F(data_retention_days), 1, 3650, "3", 0, "days of hot data (R-ST-3)"},
    {"SPOOL_DIR", MCS_CFG_STR, F(spool_dir), 1, 0, "/var/lib/mcs/spool", 0, "directory of the ingest journal (on-disk spool)"},
    {"SPOOL_MAX_MB", MCS_CFG_INT, F(spool_max_mb), 1, 1048576, "1024", 0, "bound of unstored readings on disk"},
    {"BATCH_MAX_ROWS", MCS_CFG_INT, F(batch_max_rows), 1, 100000, "5000", 0, "rows per COPY batch at most"},
    {"BATCH_MAX_MS", MCS_CFG_INT, F(batch_max_ms), 1, 10000, "25", 0, "age of the oldest row before a batch is sent"},
    {"PAYLOAD_MAX_BYTES", MCS_CFG_INT, F(payload_max_bytes), 64, 65536, "1024", 0, "largest accepted telemetry payload"},
    {"TS_MAX_FUTURE_S", MCS_CFG_INT, F(ts_max_future_s), 0, 86400, "300", 0, "readings stamped further ahead than this are rejected"},
    {"RANGE_MAX_DEFAULT", MCS_CFG_DBL, F(range_max_default), 1, 1e9, "50000", 0, "default sensor range maximum (ppm)"},
    {"METRICS_INTERVAL_MS", MCS_CFG_INT, F(metrics_interval_ms), 100, 60000, "1000", 0, "how often metrics are published to Redis"},
    {"DEVICE_FLUSH_S", MCS_CFG_INT, F(device_flush_s), 1, 3600, "10", 0, "how often per-device statistics are written to the database"},
    {"JOURNAL_FSYNC", MCS_CFG_STR, F(journal_fsync), 1, 0, "interval", 0, "journal durability against power loss: off (page cache only), interval (fdatasync every JOURNAL_FSYNC_MS), always (before every acknowledgement)"},
    {"JOURNAL_FSYNC_MS", MCS_CFG_INT, F(journal_fsync_ms), 10, 60000, "1000", 0, "fdatasync period of JOURNAL_FSYNC=interval"},
    {"OFFLINE_AFTER_S", MCS_CFG_INT, F(offline_after_s), 2, 3600, "90", 0, "a device is offline after this many seconds without a message (R-PR-3)"},
    {"REGISTRY_RELOAD_S", MCS_CFG_INT, F(registry_reload_s), 5, 86400, "300", 0, "full registry reload period, a safety net beside LISTEN/NOTIFY"},
    {"DB_STATEMENT_TIMEOUT_MS", MCS_CFG_INT, F(db_statement_timeout_ms), 100, 600000, "15000", 0, "statement timeout of mcsd's database sessions"},
    {"REDIS_TIMEOUT_MS", MCS_CFG_INT, F(redis_timeout_ms), 20, 10000, "200", 0, "Redis connect and reply timeout; past it the connection is dropped and retried with back-off"},
    {"VENDOR_SECRET", MCS_CFG_STR, F(vendor_secret), 0, 0, "", 1, "vendor secret of device passwords (R-MQ-6)"},
    /* issue #10: scheduler, archive, backup, history (docs/ARCHIVE.md) */
    {"SCHED_ENABLED", MCS_CFG_INT, F(sched_enabled), 0, 1, "1", 0, "run the scheduled jobs (leader-locked across instances)"},
    {"R2_ENDPOINT", MCS_CFG_STR, F(r2_endpoint), 0, 0, "", 0, "S3/R2 endpoint URL, e.g. https://ACCOUNT.r2.cloudflarestorage.com"},
    {"R2_ACCESS_KEY", MCS_CFG_STR, F(r2_access_key), 0, 0, "", 0, "S3/R2 access key id"},
    {"R2_SECRET_KEY", MCS_CFG_STR, F(r2_secret_key), 0, 0, "", 1, "S3/R2 secret access key"},
    {"R2_BUCKET", MCS_CFG_STR, F(r2_bucket), 0, 0, "mcs-archive", 0, "bucket of archives and backups"},
    {"R2_REGION", MCS_CFG_STR, F(r2_region), 1, 0, "auto", 0, "SigV4 region (R2: auto)"},
    {"ARCHIVE_SINK", MCS_CFG_STR, F(archive_sink), 1, 0, "s3", 0, "where archives and backups go: s3 or dir"},
    {"ARCHIVE_DIR", MCS_CFG_STR, F(archive_dir), 1, 0, "./archive", 0, "root directory of the dir sink"},
    {"ARCHIVE_PART_MB", MCS_CFG_INT, F(archive_part_mb), 1, 512, "8", 0, "multipart part size in MB (S3 and R2 need >= 5); also the memory bound of an upload"},
    {"ARCHIVE_GZIP_LEVEL", MCS_CFG_INT, F(archive_gzip_level), 1, 9, "6", 0, "gzip level of archive files"},
    {"ARCHIVE_VERIFY_DOWNLOAD", MCS_CFG_INT, F(archive_verify_download), 0, 1, "0", 0, "always download an archive back to verify it (else only when its ETag says nothing)"},
    {"BACKUP_KEEP", MCS_CFG_INT, F(backup_keep), 1, 1000, "8", 0, "weekly backups kept"},
    {"PG_BIN_DIR", MCS_CFG_STR, F(pg_bin_dir), 0, 0, "", 0, "directory of pg_dump/pg_restore (empty: PATH)"},
    {"HISTORY_CACHE_DIR", MCS_CFG_STR, F(history_cache_dir), 1, 0, "./history-cache", 0, "local cache of archived days read by history queries"},
    {"HISTORY_CACHE_MB", MCS_CFG_INT, F(history_cache_mb), 1, 1048576, "512", 0, "bound of the history cache"},
    /* mcs-api (src/api, issue #8); mcsd ignores these. */
    {"API_BIND", MCS_CFG_STR, F(api_bind), 1, 0, "127.0.0.1", 0, "mcs-api: address to listen on"},
    {"API_PORT", MCS_CFG_INT, F(api_port), 1, 65535, "8080", 0, "mcs-api: HTTP port"},
    {"JWT_SECRET", MCS_CFG_STR, F(jwt_secret), 0, 0, "", 1, "mcs-api: HS256 key, at least 32 bytes (R-API-1)"},
    {"JWT_EXPIRE_HOURS", MCS_CFG_INT, F(jwt_expire_hours), 1, 720, "24", 0, "mcs-api: token lifetime"},
    {"WEB_ROOT", MCS_CFG_STR, F(web_root), 0, 0, "web/dist", 0, "mcs-api: directory of the built web app"},
    {"API_BODY_MAX", MCS_CFG_INT, F(api_body_max), 1024, 16777216, "65536", 0, "mcs-api: largest JSON request body"},
    {"API_UPLOAD_MAX", MCS_CFG_INT, F(api_upload_max), 1024, 67108864, "8388608", 0, "mcs-api: largest floor-plan upload"},
    {"CMD_DEADLINE_S", MCS_CFG_INT, F(cmd_deadline_s), 2, 86400, "60", 0, "mcs-api: seconds a device has to answer a command once online before it is marked expired (an OTA gets at least 900)"},
    {"API_MQTT_USER", MCS_CFG_STR, F(api_mqtt_user), 0, 0, "worker", 0, "mcs-api: broker account for device commands (the broker's worker, R-MQ-6)"},
    {"API_MQTT_PASS", MCS_CFG_STR, F(api_mqtt_pass), 0, 0, "", 1, "mcs-api: its password"},
    {"LOGIN_MAX_FAIL_USER", MCS_CFG_INT, F(login_max_fail_user), 1, 1000, "5", 0, "mcs-api: failed logins of one user from one address before 429"},
    {"LOGIN_MAX_FAIL_USER_ALL", MCS_CFG_INT, F(login_max_fail_user_all), 1, 100000, "50", 0, "mcs-api: failed logins of one user from all addresses before 429 (the slower global brake)"},
    {"LOGIN_MAX_FAIL_IP", MCS_CFG_INT, F(login_max_fail_ip), 1, 100000, "20", 0, "mcs-api: failed logins from one address before 429"},
    {"API_JOBS_PER_ADDR", MCS_CFG_INT, F(api_jobs_per_addr), 1, 64, "8", 0, "mcs-api: slow requests (password checks, channel tests) of one address waiting at once; more get 429"},
    {"LOGIN_LOCK_S", MCS_CFG_INT, F(login_lock_s), 1, 86400, "30", 0, "mcs-api: first back-off after too many failures (doubles, at most 15 min)"},
    {"API_ALARM_SOURCE", MCS_CFG_STR, F(api_alarm_source), 1, 0, "pg", 0, "mcs-api: alarm events from PostgreSQL NOTIFY mcs_alarm (pg) or Redis mcs:alarm (redis)"},
    {"API_TRUSTED_PROXY", MCS_CFG_STR, F(api_trusted_proxy), 0, 0, "", 0, "mcs-api: address of the reverse proxy whose X-Forwarded-For names the client (audit, login throttle)"},
    {"WS_MAX_CLIENTS", MCS_CFG_INT, F(ws_max_clients), 1, 100000, "1000", 0, "mcs-api: authenticated dashboard WebSocket clients at most"},
    {"WS_AUTH_TIMEOUT_S", MCS_CFG_INT, F(ws_auth_timeout_s), 1, 60, "5", 0, "mcs-api: a dashboard socket that sends no valid auth frame in this time is closed"},
    {"WS_UNAUTHED_MAX", MCS_CFG_INT, F(ws_unauthed_max), 1, 100000, "256", 0, "mcs-api: dashboard sockets not yet authenticated at most (the oldest is closed for a new one)"},
    {"WS_UNAUTHED_PER_ADDR", MCS_CFG_INT, F(ws_unauthed_per_addr), 1, 100000, "16", 0, "mcs-api: of those, from one address at most (its oldest is closed for a new one)"},
    {"WS_STALL_S", MCS_CFG_INT, F(ws_stall_s), 2, 3600, "30", 0, "mcs-api: a dashboard client that completes no frame for this long is dropped"},
    {"ALARMS_ENABLED", MCS_CFG_INT, F(alarms_enabled), 0, 1, "1", 0, "alarm engine and notifier in this mcsd (docs/ALARMS.md)"},
    {"NOTIFY_POLL_MS", MCS_CFG_INT, F(notify_poll_ms), 10, 10000, "100", 0, "how often each channel looks for due notifications"},
    {"NOTIFY_TIMEOUT_MS", MCS_CFG_INT, F(notify_timeout_ms), 100, 120000, "10000", 0, "time limit of one notification request"},
    {"MCS_SECRET_KEY", MCS_CFG_STR, F(secret_key), 0, 0, "", 1, "key of secrets at rest: 64 hex digits or base64 of 32 bytes"},
    {"MCS_SECRET_KEY_FILE", MCS_CFG_STR, F(secret_key_file), 0, 0, "", 0, "file holding MCS_SECRET_KEY (text or 32 raw bytes)"},
    {"LICENSE_FILE", MCS_CFG_STR, F(license_file), 1, 0, "/var/lib/mcs/license/license.key", 0, "the signed license file; token.json and license.state live beside it"},
    {"MACHINE_ID_FILE", MCS_CFG_STR, F(machine_id_file), 1, 0, "/etc/machine-id", 0, "host id the license is bound to (/app/host_id in containers); only its keyed hash leaves the host"},
    {"LICENSE_SERVER_URL", MCS_CFG_STR, F(license_server_url), 1, 0, "https://license.mcs-iot.com/api/verify", 0, "the vendor's license server (mcs-licensed): checked at start and daily at 03:00"},
    {"LICENSE_SERVER_CAFILE", MCS_CFG_STR, F(license_server_cafile), 0, 0, "", 0, "CA file for the license server's certificate (default: the system's CAs)"},
    {NULL, MCS_CFG_STR, 0, 0, 0, 0, NULL, 0, NULL},
};
#undef F

static const struct mcs_cfg_entry *find(const char *name)
{
    for(const struct mcs_cfg_entry *e = mcs_cfg_table; e->name; e++)
        if(!strcmp(e->name, name))
            return e;
    return NULL;
}

static int set_entry(struct mcs_config *cfg, const struct mcs_cfg_entry *e,
                     const char *value, char *err, size_t errn)
{
    char *p = (char *)cfg + e->offset;

    if(e->type == MCS_CFG_STR) {
        size_t len = strlen(value);
        if(len >= e->size) {
            snprintf(err, errn, "%s: value is %zu bytes, at most %zu allowed", e->name,
                     len, e->size - 1);
            return MCS_ECONFIG;
        }
        if(len < (size_t)e->min) {
            snprintf(err, errn, "%s: must not be empty", e->name);
            return MCS_ECONFIG;
        }
        memcpy(p, value, len + 1);
        return 0;
    }
    if(e->type == MCS_CFG_INT) {
        long v;
        if(mcs_parse_long(value, (long)e->min, (long)e->max, &v)) {
            snprintf(err, errn, "%s: '%.64s' is not an integer in %.0f..%.0f", e->name,
                     value, e->min, e->max);
            return MCS_ECONFIG;
        }
        *(int *)(void *)p = (int)v;
        return 0;
    }
    double d;
    if(mcs_parse_double(value, e->min, e->max, &d)) {
        snprintf(err, errn, "%s: '%.64s' is not a number in %g..%g", e->name, value,
                 e->min, e->max);
        return MCS_ECONFIG;
    }
    *(double *)(void *)p = d;
    return 0;
}

void mcs_config_defaults(struct mcs_config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    for(const struct mcs_cfg_entry *e = mcs_cfg_table; e->name; e++) {
        /* A default that fails its own bounds is a programming error. */
        if(set_entry(cfg, e, e->def, err, sizeof(err))) {
            fprintf(stderr, "config: bad default: %s\n", err);
            abort();
        }
    }
}

int mcs_config_set(struct mcs_config *cfg, const char *name, const char *value,
                   char *err, size_t errn)
{
    const struct mcs_cfg_entry *e = find(name);
    if(!e) {
        snprintf(err, errn, "%.64s: unknown setting", name);
        return MCS_ENOTFOUND;
    }
    return set_entry(cfg, e, value, err, errn);
}

static char *trim(char *s)
{
    char *end;
    while(*s && isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while(end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int mcs_config_load_env_file(struct mcs_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096 + 2];
    int lineno = 0, bad = 0;

    if(!f) {
        fprintf(stderr, "config: cannot read %s: %s\n", path, strerror(errno));
        return MCS_EIO;
    }
    for(;;) {
        char *s, *eq, *key, *val, err[256];
        long start = ftell(f);
        if(!fgets(line, sizeof(line), f))
            break;
        size_t len = strlen(line);
        lineno++;
        /* fgets stops at a newline, not at a NUL byte: bytes consumed beyond
         * strlen() mean the line holds a NUL, whose tail would otherwise be
         * read as the next line. */
        long consumed = start >= 0 ? ftell(f) - start : (long)len;
        if(consumed != (long)len) {
            fprintf(stderr, "config: %s:%d: line contains a NUL byte\n", path, lineno);
            bad = 1;
            /* fgets stored every byte it consumed: skip the rest of the line
             * only if its newline was not among them. */
            if(consumed <= 0 || consumed > (long)sizeof(line) - 1 || line[consumed - 1] != '\n') {
                int c;
                while((c = fgetc(f)) != EOF && c != '\n') {
                }
            }
            continue;
        }
        if(len == sizeof(line) - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "config: %s:%d: line longer than 4096 bytes\n", path, lineno);
            bad = 1;
            int c;
            while((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        s = trim(line);
        if(!*s || *s == '#')
            continue;
        if(!strncmp(s, "export ", 7))
            s = trim(s + 7);
        eq = strchr(s, '=');
        if(!eq) {
            fprintf(stderr, "config: %s:%d: expected KEY=VALUE\n", path, lineno);
            bad = 1;
            continue;
        }
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
        len = strlen(val);
        if(len >= 2 && (val[0] == '"' || val[0] == '\'') && val[len - 1] == val[0]) {
            val[len - 1] = '\0';
            val++;
        }
        if(!find(key))
            continue; /* shared with compose and other services */
        if(mcs_config_set(cfg, key, val, err, sizeof(err))) {
            fprintf(stderr, "config: %s:%d: %s\n", path, lineno, err);
            bad = 1;
        }
    }
    fclose(f);
    return bad ? MCS_ECONFIG : 0;
}

int mcs_config_load_environ(struct mcs_config *cfg)
{
    int bad = 0;
    for(const struct mcs_cfg_entry *e = mcs_cfg_table; e->name; e++) {
        const char *v = getenv(e->name);
        char err[256];
        if(!v)
            continue;
        if(set_entry(cfg, e, v, err, sizeof(err))) {
            fprintf(stderr, "config: environment %s\n", err);
            bad = 1;
        }
    }
    return bad ? MCS_ECONFIG : 0;
}

int mcs_config_load(struct mcs_config *cfg, int *argc, char **argv)
{
    const char *env_file = getenv("ENV_FILE");
    int bad = 0, out = 1;

    mcs_config_defaults(cfg);
    for(int i = 1; i < *argc; i++)
        if(!strcmp(argv[i], "--env-file") && i + 1 < *argc)
            env_file = argv[i + 1];
    if(!env_file && access(".env", R_OK) == 0)
        env_file = ".env";
    if(env_file && mcs_config_load_env_file(cfg, env_file))
        bad = 1;
    if(mcs_config_load_environ(cfg))
        bad = 1;
    for(int i = 1; i < *argc; i++) {
        if(!strcmp(argv[i], "--env-file") && i + 1 < *argc) {
            i++;
            continue;
        }
        if(!strcmp(argv[i], "--set") && i + 1 < *argc) {
            char buf[1024], err[256], *eq;
            snprintf(buf, sizeof(buf), "%s", argv[++i]);
            eq = strchr(buf, '=');
            if(!eq) {
                fprintf(stderr, "config: --set %s: expected NAME=VALUE\n", buf);
                bad = 1;
                continue;
            }
            *eq = '\0';
            if(mcs_config_set(cfg, buf, eq + 1, err, sizeof(err))) {
                fprintf(stderr, "config: --set %s\n", err);
                bad = 1;
            }
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    /* Cross-field checks run even after a bad value, so one run names every
     * problem. */
    if(mcs_config_validate(cfg))
        bad = 1;
    if(!bad) {
        mcs_log_level = mcs_log_level_parse(cfg->log_level);
        /* The plant's zone becomes libc's, for localday.h (issue #10). */
        setenv("TZ", cfg->tz, 1);
        tzset();
    }
    return bad ? MCS_ECONFIG : 0;
}

int mcs_config_validate(const struct mcs_config *cfg)
{
    int bad = 0;
    if(mcs_log_level_parse(cfg->log_level) < 0) {
        fprintf(stderr, "config: LOG_LEVEL: '%s' is not one of ERROR, WARN, INFO, DEBUG\n",
                cfg->log_level);
        bad = 1;
    }
    for(const char *p = cfg->mqtt_prefix; *p; p++)
        if(*p == '/' || *p == '+' || *p == '#' || (unsigned char)*p < 0x21) {
            fprintf(stderr, "config: MQTT_TOPIC_PREFIX: must be one topic level "
                            "without '/', '+', '#' or spaces\n");
            bad = 1;
            break;
        }
    for(const char *p = cfg->mqtt_share_group; *p; p++)
        if(*p == '/' || *p == '+' || *p == '#' || (unsigned char)*p < 0x21) {
            fprintf(stderr, "config: MQTT_SHARE_GROUP: must not contain '/', '+', '#' "
                            "or spaces\n");
            bad = 1;
            break;
        }
    for(const char *p = cfg->instance_id; *p; p++)
        if(!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            fprintf(stderr, "config: INSTANCE_ID: only letters, digits, '-', '_' and '.'\n");
            bad = 1;
            break;
        }
    /* issue #10: a zone libc does not know would silently be UTC. */
    for(const char *p = cfg->tz; *p; p++)
        if(!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) {
            fprintf(stderr, "config: TZ: '%s' is not a zone name like Asia/Shanghai\n", cfg->tz);
            bad = 1;
            break;
        }
    if(!bad && access("/usr/share/zoneinfo", F_OK) == 0) {
        char zf[600];
        snprintf(zf, sizeof(zf), "/usr/share/zoneinfo/%s", cfg->tz);
        if(access(zf, R_OK) != 0) {
            fprintf(stderr, "config: TZ: unknown zone '%s'\n", cfg->tz);
            bad = 1;
        }
    }
    if(strcmp(cfg->archive_sink, "s3") && strcmp(cfg->archive_sink, "dir")) {
        fprintf(stderr, "config: ARCHIVE_SINK: must be s3 or dir\n");
        bad = 1;
    }
    if(strcmp(cfg->journal_fsync, "off") && strcmp(cfg->journal_fsync, "interval") &&
       strcmp(cfg->journal_fsync, "always")) {
        fprintf(stderr, "config: JOURNAL_FSYNC: '%s' is not one of off, interval, always\n",
                cfg->journal_fsync);
        bad = 1;
    }
    if(cfg->mqtt_cafile[0] && access(cfg->mqtt_cafile, R_OK) != 0) {
        fprintf(stderr, "config: MQTT_TLS_CAFILE: cannot read %s\n", cfg->mqtt_cafile);
        bad = 1;
    }
    return bad ? MCS_ECONFIG : 0;
}

void mcs_config_print(const struct mcs_config *cfg)
{
    for(const struct mcs_cfg_entry *e = mcs_cfg_table; e->name; e++) {
        const char *p = (const char *)cfg + e->offset;
        if(e->type == MCS_CFG_STR)
            printf("%s=%s\n", e->name, e->secret ? (*p ? "****" : "") : p);
        else if(e->type == MCS_CFG_INT)
            printf("%s=%d\n", e->name, *(const int *)(const void *)p);
        else
            printf("%s=%g\n", e->name, *(const double *)(const void *)p);
    }
}

/* config.h - the one typed configuration table (R-OP-4, STYLE rule 10).
 * Owns struct mcs_config and its loading from defaults, a .env file, the
 * environment and command-line overrides, in that order of precedence.
 * Thread: loaded once in main before any thread starts; read-only after. */
#ifndef MCS_CONFIG_H
#define MCS_CONFIG_H

#include <stddef.h>

struct mcs_config {
    /* PostgreSQL */
    char db_host[256];
    int db_port;
    char db_name[64];
    char db_user[64];
    char db_pass[256];
    /* Redis */
    char redis_host[256];
    int redis_port;
    char redis_pass[256];
    /* MQTT */
    char mqtt_host[256];
    int mqtt_port;
    char mqtt_user[64];
    char mqtt_pass[256];
    char mqtt_prefix[32];
    char mqtt_share_group[32];
    int mqtt_keepalive;
    char mqtt_cafile[512];
    /* Process */
    char instance_id[64];
    char log_level[16];
    char tz[64];
    /* Storage and ingest */
    int data_retention_days;
    char spool_dir[512];
    int spool_max_mb;
    int batch_max_rows;
    int batch_max_ms;
    int payload_max_bytes;
    int ts_max_future_s;
    double range_max_default;
    int metrics_interval_ms;
    int device_flush_s;
    char journal_fsync[16];  /* off | interval | always (docs/OPERATIONS.md) */
    int journal_fsync_ms;
    int offline_after_s;     /* R-PR-3: online while reported within this */
    int registry_reload_s;   /* full registry reload, besides NOTIFY */
    int db_statement_timeout_ms;
    int redis_timeout_ms;
    /* Devices */
    char vendor_secret[256];
    /* Scheduler, archive, backup, history (issue #10, docs/ARCHIVE.md) */
    int sched_enabled;
    char r2_endpoint[256];
    char r2_access_key[128];
    char r2_secret_key[256];
    char r2_bucket[64];
    char r2_region[32];
    char archive_sink[8];
    char archive_dir[512];
    int archive_part_mb;
    int archive_gzip_level;
    int archive_verify_download;
    int backup_keep;
    char pg_bin_dir[256];
    char history_cache_dir[512];
    int history_cache_mb;
    /* mcs-api (src/api, issue #8) */
    char api_bind[64];
    int api_port;
    char jwt_secret[256];
    int jwt_expire_hours;
    char web_root[512];
    int api_body_max;
    int api_upload_max;
    char api_mqtt_user[64];
    int cmd_deadline_s;
    char api_mqtt_pass[256];
    int login_max_fail_user;
    int login_max_fail_ip;
    int login_max_fail_user_all;
    int api_jobs_per_addr;
    int ws_auth_timeout_s;
    int ws_unauthed_max;
    int ws_unauthed_per_addr;
    int login_lock_s;
    int ws_max_clients;
    int ws_stall_s;
    char api_alarm_source[16];
    char api_trusted_proxy[64];
    /* Alarms and notifications (issue #7, docs/ALARMS.md) */
    int alarms_enabled;
    int notify_poll_ms;
    int notify_timeout_ms;
    char secret_key[128];
    char secret_key_file[512];
    /* License guard (issue #17, docs/OPERATIONS.md "License") */
    char license_file[512];
    char machine_id_file[512];
    char license_server_url[512];
    char license_server_cafile[512];
};

/* What a table entry holds. */
enum mcs_cfg_type { MCS_CFG_STR, MCS_CFG_INT, MCS_CFG_DBL };

struct mcs_cfg_entry {
    const char *name;   /* environment variable and .env key */
    enum mcs_cfg_type type;
    size_t offset;      /* into struct mcs_config */
    size_t size;        /* for strings: the field's size (max length + 1) */
    double min, max;    /* bounds for numbers; for strings min length */
    const char *def;    /* default as text */
    int secret;         /* never printed */
    const char *help;
};

/* The table itself, ended by an entry with name == NULL. */
extern const struct mcs_cfg_entry mcs_cfg_table[];

/* Sets every field to its default. */
void mcs_config_defaults(struct mcs_config *cfg);

/* Sets one field from text, checking type and bounds. On error writes a
 * one-line explanation into err (size errn) and returns MCS_ECONFIG;
 * MCS_ENOTFOUND when the name is not in the table. */
int mcs_config_set(struct mcs_config *cfg, const char *name, const char *value,
                   char *err, size_t errn);

/* Loads KEY=VALUE lines of a .env file (comments, blank lines, `export `
 * prefixes and single/double quotes allowed; unknown keys are ignored since
 * the file is shared with other services). Lines longer than 4 KiB and bad
 * values are errors. Returns 0, MCS_EIO if unreadable, or MCS_ECONFIG with
 * every problem written to stderr. */
int mcs_config_load_env_file(struct mcs_config *cfg, const char *path);

/* Applies every table variable present in the process environment. Returns
 * 0 or MCS_ECONFIG (problems written to stderr). */
int mcs_config_load_environ(struct mcs_config *cfg);

/* The common start-up sequence for every program: defaults, then the .env
 * file (ENV_FILE, or ./.env if it exists, or the --env-file argument), then
 * the environment, then `--set NAME=VALUE` arguments. Recognised arguments
 * are removed from argv (argc updated). Returns 0 or MCS_ECONFIG. */
int mcs_config_load(struct mcs_config *cfg, int *argc, char **argv);

/* Cross-field checks that a table cannot express. Returns 0 or MCS_ECONFIG
 * (problems written to stderr). */
int mcs_config_validate(const struct mcs_config *cfg);

/* Prints the effective configuration, secrets masked, to stdout. */
void mcs_config_print(const struct mcs_config *cfg);

#endif

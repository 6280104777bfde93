/* authopt.h - the options of the mcs_auth broker plugin: the
 * `plugin_opt_<name> <value>` lines of mosquitto.conf, as one typed table
 * (STYLE rule 10). Owns struct mcs_auth_opts and its parsing.
 * Thread: the broker's, in mosquitto_plugin_init; read-only afterwards.
 *
 * Precedence: defaults, then `env_file` (the project's .env: DB_*, REDIS_*,
 * VENDOR_SECRET, MQTT_TOPIC_PREFIX), then the other plugin options. Names
 * are case-insensitive; an unknown name is an error (a typo must not
 * silently leave the default in place). */
#ifndef MCS_AUTHOPT_H
#define MCS_AUTHOPT_H

#include "config.h"

#include <stddef.h>

struct mcs_auth_opts {
    /* From the project's configuration table: db_host db_port db_name
     * db_user db_pass redis_host redis_port redis_pass vendor_secret
     * mqtt_topic_prefix (alias: prefix) mqtt_share_group. */
    struct mcs_config cfg;
    char worker_hash[256];         /* Argon2id string of the worker's password ("" = no login) */
    char admin_hash[256];          /* same for admin */
    char mcsd_hash[256];           /* same for mcsd (user `mcsd`, one password for all instances) */
    char mcsd_clientid_prefix[32]; /* client ids of mcsd, reserved for it ("mcsd-") */
    char internal_addresses[1024]; /* where worker/admin/mcsd may log in from */
    char snapshot_file[512];       /* registry snapshot for starts without a database ("" = none) */
    int verify_cache_s;      /* a successful worker/admin verification is remembered this long */
    int verify_per_s;        /* Argon2 verifications per second at most, all addresses */
    int verify_per_addr_s;   /* ... and per client address */
    int alarm_min_attempts;  /* unknown-SN attempts before an UNKNOWN_DEVICE alarm */
    int alarm_window_s;      /* one UNKNOWN_DEVICE alarm per SN per window */
    int alarm_max_per_min;   /* new UNKNOWN_DEVICE alarms per minute, all SNs */
    int metrics_interval_ms; /* how often counters go to Redis mcs:metrics:broker */
    int full_reload_s;       /* full registry reload period (heals missed notifications) */
    int max_username;        /* CONNECT field limits in bytes */
    int max_password;
    int max_clientid;
};

/* One option as Mosquitto hands it over (struct mosquitto_opt). */
struct authopt_kv {
    const char *key;
    const char *value;
};

/* Fills o from defaults and the n options. Returns 0, or MCS_ECONFIG with a
 * one-line reason in err (never containing a secret value). Requires a
 * non-empty vendor_secret; checks that the hashes are Argon2id strings. */
int authopt_parse(struct mcs_auth_opts *o, const struct authopt_kv *kv, int n, char *err,
                  size_t errn);

/* Wipes secrets (vendor secret, database/Redis passwords, hashes). */
void authopt_cleanup(struct mcs_auth_opts *o);

#endif

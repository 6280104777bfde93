/* authopt.c - parsing of the plugin's options (see authopt.h). Owns
 * nothing beyond the struct it fills. Thread: broker's, at init. */
#include "authopt.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define F(field) offsetof(struct mcs_auth_opts, field), sizeof(((struct mcs_auth_opts *)0)->field)

struct opt_entry {
    const char *name;
    int is_int;
    size_t offset, size;
    long min, max;
    const char *def;
};

/* Options of the plugin itself; the rest map to the project's table. */
static const struct opt_entry opt_table[] = {
    {"worker_hash", 0, F(worker_hash), 0, 0, ""},
    {"admin_hash", 0, F(admin_hash), 0, 0, ""},
    {"mcsd_hash", 0, F(mcsd_hash), 0, 0, ""},
    {"mcsd_clientid_prefix", 0, F(mcsd_clientid_prefix), 0, 0, "mcsd-"},
    {"internal_addresses", 0, F(internal_addresses), 0, 0, "127.0.0.1,::1"},
    {"snapshot_file", 0, F(snapshot_file), 0, 0, ""},
    {"verify_cache_s", 1, F(verify_cache_s), 1, 86400, "3600"},
    {"verify_per_s", 1, F(verify_per_s), 1, 1000, "5"},
    {"verify_per_addr_s", 1, F(verify_per_addr_s), 1, 1000, "2"},
    {"alarm_min_attempts", 1, F(alarm_min_attempts), 1, 1000000, "3"},
    {"alarm_window_s", 1, F(alarm_window_s), 1, 86400, "600"},
    {"alarm_max_per_min", 1, F(alarm_max_per_min), 1, 100000, "10"},
    {"metrics_interval_ms", 1, F(metrics_interval_ms), 100, 60000, "1000"},
    {"full_reload_s", 1, F(full_reload_s), 5, 86400, "600"},
    {"max_username", 1, F(max_username), 16, 65535, "64"},
    {"max_password", 1, F(max_password), 16, 65535, "128"},
    {"max_clientid", 1, F(max_clientid), 16, 65535, "128"},
    {NULL, 0, 0, 0, 0, 0, NULL},
};
#undef F

/* Names of the project's configuration table that the plugin uses. */
static const char *const cfg_names[] = {
    "DB_HOST",       "DB_PORT",           "DB_NAME",          "DB_USER",
    "DB_PASS",       "REDIS_HOST",        "REDIS_PORT",       "REDIS_PASS",
    "VENDOR_SECRET", "MQTT_TOPIC_PREFIX", "MQTT_SHARE_GROUP", NULL,
};

static int set_opt(struct mcs_auth_opts *o, const struct opt_entry *e, const char *v, char *err,
                   size_t errn)
{
    char *p = (char *)o + e->offset, *end = NULL;
    long n;

    if(!e->is_int) {
        size_t len = strlen(v);
        if(len >= e->size) {
            snprintf(err, errn, "plugin_opt_%s: value is %zu bytes, at most %zu allowed", e->name,
                     len, e->size - 1);
            return MCS_ECONFIG;
        }
        memcpy(p, v, len + 1);
        return 0;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if(errno || end == v || *end || n < e->min || n > e->max) {
        snprintf(err, errn, "plugin_opt_%s: '%.32s' is not an integer in %ld..%ld", e->name, v,
                 e->min, e->max);
        return MCS_ECONFIG;
    }
    *(int *)(void *)p = (int)n;
    return 0;
}

/* Maps a plugin option name to a configuration table name (upper case)
 * into up (size upn); returns 1 when it is one the plugin uses. */
static int cfg_name(const char *key, char *up, size_t upn)
{
    size_t i;
    if(!strcasecmp(key, "prefix"))
        key = "MQTT_TOPIC_PREFIX";
    for(i = 0; key[i] && i + 1 < upn; i++)
        up[i] = (char)toupper((unsigned char)key[i]);
    up[i] = '\0';
    if(key[i])
        return 0;
    for(const char *const *n = cfg_names; *n; n++)
        if(!strcmp(*n, up))
            return 1;
    return 0;
}

int authopt_parse(struct mcs_auth_opts *o, const struct authopt_kv *kv, int n, char *err,
                  size_t errn)
{
    int rc = MCS_ECONFIG;

    memset(o, 0, sizeof(*o));
    mcs_config_defaults(&o->cfg);
    for(const struct opt_entry *e = opt_table; e->name; e++)
        if(set_opt(o, e, e->def, err, errn))
            goto out; /* a default outside its own bounds: a bug, reported */
    for(int i = 0; i < n; i++) {
        if(kv[i].key && !strcasecmp(kv[i].key, "env_file")) {
            int r = mcs_config_load_env_file(&o->cfg, kv[i].value ? kv[i].value : "");
            if(r) {
                snprintf(err, errn, "plugin_opt_env_file %.200s: %s", kv[i].value,
                         r == MCS_EIO ? "cannot be read" : "has invalid values (see stderr)");
                goto out;
            }
        }
    }
    for(int i = 0; i < n; i++) {
        const char *key = kv[i].key, *val = kv[i].value ? kv[i].value : "";
        const struct opt_entry *e;
        char up[64];
        if(!key || !strcasecmp(key, "env_file"))
            continue;
        for(e = opt_table; e->name; e++)
            if(!strcasecmp(e->name, key))
                break;
        if(e->name) {
            if(set_opt(o, e, val, err, errn))
                goto out;
            continue;
        }
        if(cfg_name(key, up, sizeof(up))) {
            if(mcs_config_set(&o->cfg, up, val, err, errn))
                goto out;
            continue;
        }
        snprintf(err, errn, "unknown option plugin_opt_%.64s", key);
        goto out;
    }
    if(!o->cfg.vendor_secret[0]) {
        snprintf(err, errn,
                 "vendor_secret is not set (plugin_opt_vendor_secret or VENDOR_SECRET "
                 "in plugin_opt_env_file): device passwords derive from it");
        goto out;
    }
    if(o->worker_hash[0] && strncmp(o->worker_hash, "$argon2id$", 10) != 0) {
        snprintf(err, errn,
                 "plugin_opt_worker_hash: not an Argon2id hash (make one with "
                 "`mcs hash-password`)");
        goto out;
    }
    if(o->admin_hash[0] && strncmp(o->admin_hash, "$argon2id$", 10) != 0) {
        snprintf(err, errn,
                 "plugin_opt_admin_hash: not an Argon2id hash (make one with "
                 "`mcs hash-password`)");
        goto out;
    }
    if(o->mcsd_hash[0] && strncmp(o->mcsd_hash, "$argon2id$", 10) != 0) {
        snprintf(err, errn,
                 "plugin_opt_mcsd_hash: not an Argon2id hash (make one with "
                 "`mcs hash-password`)");
        goto out;
    }
    if(!o->mcsd_clientid_prefix[0] ||
       !strncmp(o->mcsd_clientid_prefix, "device_", strlen(o->mcsd_clientid_prefix)) ||
       !strncmp(o->mcsd_clientid_prefix, "device_", 7)) {
        snprintf(err, errn,
                 "plugin_opt_mcsd_clientid_prefix: must be non-empty and must not "
                 "overlap the devices' device_ client ids");
        goto out;
    }
    rc = 0;
out:
    return rc;
}

void authopt_cleanup(struct mcs_auth_opts *o)
{
    /* volatile stores so that the wipe is not optimised away. */
    volatile char *p = (volatile char *)o;
    for(size_t i = 0; i < sizeof(*o); i++)
        p[i] = 0;
}

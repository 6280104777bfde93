/* storage_cfg.c - merges the admin's storage settings (system_config
 * 'storage', written by mcs-api h_config.c) over the .env R2_* values for
 * the sinks of archive, backup and history. Reads one row; writes nothing.
 * Thread: the caller's. */
#include "storage_cfg.h"

#include "err.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct field {
    const char *name;
    size_t off;
    size_t size;
    int secret;
};

#define F(m) offsetof(struct mcs_config, m), sizeof(((struct mcs_config *)0)->m)

static const struct field fields[] = {
    {"endpoint", F(r2_endpoint), 0},     {"bucket", F(r2_bucket), 0},
    {"region", F(r2_region), 0},         {"access_key", F(r2_access_key), 1},
    {"secret_key", F(r2_secret_key), 1},
};

static void add_used(char *used, size_t usedn, const char *name, const char *src)
{
    size_t l = strlen(used);
    if(l < usedn)
        snprintf(used + l, usedn - l, "%s%s=%s", l ? " " : "", name, src);
}

int storage_settings_merge(const struct mcs_config *env, const char *json,
                           const struct mcs_secret_key *key, struct mcs_config *out, char *used,
                           size_t usedn, char *err, size_t errn)
{
    cJSON *s = NULL;
    int rc = 0, any_endpoint = 0;

    *out = *env;
    if(usedn)
        used[0] = '\0';
    if(json) {
        s = cJSON_Parse(json);
        if(!cJSON_IsObject(s)) {
            snprintf(err, errn, "system_config 'storage' is not a JSON object");
            rc = MCS_EPARSE;
            goto out;
        }
    }
    for(size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const struct field *f = &fields[i];
        const cJSON *v = s ? cJSON_GetObjectItemCaseSensitive(s, f->name) : NULL;
        char *dst = (char *)out + f->off;
        if(!cJSON_IsString(v) || !v->valuestring[0]) {
            add_used(used, usedn, f->name, "env");
            continue;
        }
        if(f->secret) {
            rc = secret_decrypt(key, v->valuestring, dst, f->size);
            if(rc) {
                snprintf(err, errn, "storage setting %s cannot be decrypted (%s)%s", f->name,
                         mcs_strerror(rc),
                         key && key->set ? ": MCS_SECRET_KEY differs from mcs-api's"
                                         : ": MCS_SECRET_KEY is not configured");
                goto out;
            }
        }
        else {
            if(strlen(v->valuestring) >= f->size) {
                snprintf(err, errn, "storage setting %s is too long", f->name);
                rc = MCS_ETOOBIG;
                goto out;
            }
            memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
            if(!strcmp(f->name, "endpoint"))
                any_endpoint = 1;
        }
        add_used(used, usedn, f->name, "system_config");
    }
    if(any_endpoint)
        snprintf(out->archive_sink, sizeof(out->archive_sink), "s3");
out:
    if(rc) {
        /* Never leave a half-merged secret behind. */
        *out = *env;
    }
    cJSON_Delete(s);
    return rc;
}

int storage_sink_open(const struct mcs_config *cfg, PGconn *pg, const _Atomic int *stop,
                      struct mcs_sink **out, char *err, size_t errn)
{
    struct mcs_config *m = malloc(sizeof(*m));
    struct mcs_secret_key key;
    PGresult *r = NULL;
    const char *json = NULL;
    char used[200];
    int rc;

    *out = NULL;
    memset(&key, 0, sizeof(key));
    if(!m) {
        snprintf(err, errn, "out of memory");
        return MCS_ENOMEM;
    }
    if(pg) {
        r = PQexec(pg, "SELECT value::text FROM system_config WHERE key = 'storage'");
        if(PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(err, errn, "reading the storage settings: %s", PQerrorMessage(pg));
            rc = MCS_EDB;
            goto out;
        }
        if(PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            json = PQgetvalue(r, 0, 0);
    }
    /* A key that cannot be loaded matters only for an encrypted value, and
     * then secret_decrypt reports it. */
    (void)secret_key_load(&key, cfg->secret_key, cfg->secret_key_file);
    rc = storage_settings_merge(cfg, json, &key, m, used, sizeof(used), err, errn);
    if(rc) {
        LOG_E("storage", "storage settings unusable", LS("error", err));
        goto out;
    }
    LOG_I("storage", "sink settings", LS("sink", m->archive_sink),
          LS("stored", json ? "yes" : "no"), LS("sources", used));
    rc = sink_open(m, stop, out, err, errn);
out:
    PQclear(r);
    sodium_memzero(&key, sizeof(key));
    sodium_memzero(m, sizeof(*m));
    free(m);
    return rc;
}

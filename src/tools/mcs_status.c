/* mcs_status.c - `mcs status`: devices, readings of the last minute and
 * the metrics every mcsd instance publishes in Redis (R-MQ-6). Reads only.
 * Thread: single-threaded. */
#include "err.h"
#include "mcs_util.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

/* The metrics of an instance that `mcs status` prints, in this order; the
 * non-zero rej_* reasons follow `rejected`. */
static const char *const metric_keys[] = {
    "received",   "accepted", "rejected",       "stored",     "duplicates", "spool_bytes",
    "spool_lost", "db_up",    "mqtt_connected", "lat_p50_ms", "lat_p99_ms",
};

/* `mcs status` gathers into this, then prints text or JSON. */
struct status {
    int db_ok, schema_ok, redis_ok;
    long long total, enabled, online, readings;
    redisReply *ids;      /* SMEMBERS mcs:instances */
    redisReply **metrics; /* HGETALL per id, same order; NULL entries */
    size_t nids;
};

static int cmp_reply_str(const void *x, const void *y)
{
    const redisReply *a = *(const redisReply *const *)x, *b = *(const redisReply *const *)y;
    return strcmp(a->str ? a->str : "", b->str ? b->str : "");
}

static void status_db(struct cli *c, struct status *s)
{
    PGresult *r = NULL;
    if(cli_db_open(c))
        return;
    s->db_ok = 1;
    if(cli_pg_query(c, "SELECT count(*), count(*) FILTER (WHERE enabled) FROM devices", 0, NULL,
                    &r))
        goto out;
    s->total = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    s->enabled = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    r = NULL;
    if(cli_pg_query(c, "SELECT count(*) FROM sensor_data WHERE time > now() - interval '1 minute'",
                    0, NULL, &r))
        goto out;
    s->readings = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    s->schema_ok = 1;
out:
    PQclear(r);
}

static void status_redis(struct cli *c, struct status *s)
{
    redisReply *rep = NULL;
    char cursor[32] = "0";

    /* SCAN, never KEYS: a big keyspace must not block Redis for everyone. */
    do {
        rep = cli_redis_cmd(c, "SCAN %s MATCH online:* COUNT 1000", cursor);
        if(!rep)
            goto out;
        if(rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
           rep->element[0]->type != REDIS_REPLY_STRING ||
           rep->element[1]->type != REDIS_REPLY_ARRAY) {
            snprintf(c->redis_err, sizeof(c->redis_err), "unexpected SCAN reply");
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        s->online += (long long)rep->element[1]->elements;
        cli_reply_free(rep);
        rep = NULL;
    } while(strcmp(cursor, "0") != 0);

    s->ids = cli_redis_cmd(c, "SMEMBERS mcs:instances");
    if(!s->ids)
        goto out;
    if(s->ids->type != REDIS_REPLY_ARRAY) {
        snprintf(c->redis_err, sizeof(c->redis_err), "mcs:instances is not a set");
        goto out;
    }
    s->nids = s->ids->elements;
    if(s->nids > 1) /* an empty reply has no element array at all */
        qsort(s->ids->element, s->nids, sizeof(redisReply *), cmp_reply_str);
    s->metrics = calloc(s->nids ? s->nids : 1, sizeof(redisReply *));
    if(!s->metrics) {
        snprintf(c->redis_err, sizeof(c->redis_err), "out of memory");
        s->nids = 0;
        goto out;
    }
    for(size_t i = 0; i < s->nids; i++) {
        const redisReply *id = s->ids->element[i];
        if(id->type != REDIS_REPLY_STRING)
            continue;
        s->metrics[i] = cli_redis_cmd(c, "HGETALL mcs:metrics:%s", id->str);
        if(!s->metrics[i])
            goto out;
    }
    s->redis_ok = 1;
out:
    cli_reply_free(rep);
}

/* Value of field key in an HGETALL reply, or NULL. */
static const char *hget(const redisReply *h, const char *key)
{
    if(!h || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for(size_t i = 0; i + 1 < h->elements; i += 2)
        if(h->element[i]->str && !strcmp(h->element[i]->str, key) && h->element[i + 1]->str)
            return h->element[i + 1]->str;
    return NULL;
}

static int is_zero(const char *v)
{
    double d;
    return !cli_parse_num(v, &d) && d == 0;
}

/* Age in ms of a metrics hash by its updated_ms, or -1 when unknown. */
static long long metrics_age(const redisReply *h, long long now)
{
    const char *u = hget(h, "updated_ms");
    double d;
    if(!u || cli_parse_num(u, &d))
        return -1;
    return now - (long long)d > 0 ? now - (long long)d : 0;
}

static int status_json(const struct status *s, long long stale_ms, long long now,
                       const char *redis_err)
{
    cJSON *o = cJSON_CreateObject(), *dev = NULL, *arr = NULL;
    int rc = o ? 0 : MCS_ENOMEM;

    if(!rc)
        rc = cli_jadd(o, "db",
                      cJSON_CreateString(!s->db_ok       ? "unreachable"
                                         : !s->schema_ok ? "error"
                                                         : "ok"));
    if(!rc)
        rc = cli_jadd(o, "redis", cJSON_CreateString(s->redis_ok ? "ok" : redis_err));
    if(!rc) {
        dev = cJSON_CreateObject();
        rc = cli_jadd(o, "devices", dev);
    }
    if(!rc)
        rc = cli_jadd(dev, "total",
                      s->schema_ok ? cJSON_CreateNumber((double)s->total) : cJSON_CreateNull());
    if(!rc)
        rc = cli_jadd(dev, "enabled",
                      s->schema_ok ? cJSON_CreateNumber((double)s->enabled) : cJSON_CreateNull());
    if(!rc)
        rc = cli_jadd(dev, "online",
                      s->redis_ok ? cJSON_CreateNumber((double)s->online) : cJSON_CreateNull());
    if(!rc)
        rc = cli_jadd(o, "readings_last_minute",
                      s->schema_ok ? cJSON_CreateNumber((double)s->readings) : cJSON_CreateNull());
    if(!rc) {
        arr = s->redis_ok ? cJSON_CreateArray() : cJSON_CreateNull();
        rc = cli_jadd(o, "instances", arr);
    }
    for(size_t i = 0; !rc && s->redis_ok && i < s->nids; i++) {
        const redisReply *h = s->metrics[i];
        cJSON *inst, *m = NULL;
        long long age = metrics_age(h, now);
        if(s->ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        inst = cJSON_CreateObject();
        rc = cli_jadd(arr, NULL, inst);
        if(!rc)
            rc = cli_jadd(inst, "id", cJSON_CreateString(s->ids->element[i]->str));
        if(!rc)
            rc = cli_jadd(inst, "age_ms",
                          age < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)age));
        if(!rc)
            rc = cli_jadd(inst, "stale", cJSON_CreateBool(age < 0 || age > stale_ms));
        if(!rc) {
            m = cJSON_CreateObject();
            rc = cli_jadd(inst, "metrics", m);
        }
        for(size_t k = 0; !rc && h && k + 1 < h->elements; k += 2)
            if(h->element[k]->str && h->element[k + 1]->str)
                rc = cli_jadd(m, h->element[k]->str, cli_jnum_or_str(h->element[k + 1]->str));
    }
    if(!rc)
        rc = cli_print_json(o);
    cJSON_Delete(o);
    return rc;
}

static void status_text(const struct status *s, long long stale_ms, long long now,
                        const char *redis_err)
{
    char sb[80];
    if(!s->db_ok)
        printf("%-16s unreachable\n", "database");
    else if(!s->schema_ok)
        printf("%-16s error (see above)\n", "database");
    if(s->schema_ok)
        printf("%-16s %lld total, %lld enabled", "devices", s->total, s->enabled);
    else
        printf("%-16s ? total, ? enabled", "devices");
    if(s->redis_ok)
        printf(", %lld online\n", s->online);
    else
        printf(", ? online\n");
    if(s->schema_ok)
        printf("%-16s %lld stored in the last minute\n", "readings", s->readings);
    if(!s->redis_ok) {
        printf("%-16s unreachable (%s)\n", "redis", redis_err);
        return;
    }
    if(!s->nids)
        printf("%-16s none registered in mcs:instances (is mcsd running?)\n", "instances");
    for(size_t i = 0; i < s->nids; i++) {
        const redisReply *h = s->metrics[i];
        long long age = metrics_age(h, now);
        if(s->ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        printf("instance %s", cli_shown(s->ids->element[i]->str, sb, sizeof(sb)));
        if(age < 0) {
            printf(": no metrics (registered, but not publishing)\n");
            continue;
        }
        printf(" (updated %.1f s ago%s)\n", (double)age / 1000.0,
               age > stale_ms ? ", STALE: not running?" : "");
        for(size_t k = 0; k < sizeof(metric_keys) / sizeof(metric_keys[0]); k++) {
            const char *v = hget(h, metric_keys[k]);
            printf("  %-18s %s\n", metric_keys[k], v ? cli_shown(v, sb, sizeof(sb)) : "-");
            if(strcmp(metric_keys[k], "rejected") != 0)
                continue;
            for(size_t j = 0; j + 1 < h->elements; j += 2) {
                const char *f = h->element[j]->str, *fv = h->element[j + 1]->str;
                if(f && fv && !strncmp(f, "rej_", 4) && !is_zero(fv))
                    printf("    %-16s %s\n", cli_shown(f, sb, sizeof(sb)), fv);
            }
        }
    }
}

static int cmd_status(struct cli *c, const struct cli_args *a)
{
    struct status s;
    long long now = (long long)mcs_now_ms();
    /* A hash not refreshed for five publishing intervals (10 s at least)
     * belongs to an instance that has stopped or hangs. */
    long long stale_ms = 5LL * c->cfg.metrics_interval_ms;
    int rc = 0;

    if(stale_ms < 10000)
        stale_ms = 10000;
    memset(&s, 0, sizeof(s));
    status_db(c, &s);
    status_redis(c, &s);
    if(a->json)
        rc = status_json(&s, stale_ms, now, c->redis_err);
    else
        status_text(&s, stale_ms, now, c->redis_err);
    if(!rc && (!s.schema_ok || !s.redis_ok))
        rc = MCS_EIO;
    for(size_t i = 0; s.metrics && i < s.nids; i++)
        cli_reply_free(s.metrics[i]);
    free(s.metrics);
    cli_reply_free(s.ids);
    return rc;
}

static const struct cli_cmd status_cmds[] = {
    {NULL, CLI_A_JSON, cmd_status},
};

const struct cli_group mcs_group_status = {
    .name = "status",
    .cmds = status_cmds,
    .ncmds = 1,
    .usage = "Platform:\n"
             "  mcs status [--json]           devices, readings of the last minute and\n"
             "                                the metrics of every mcsd instance\n",
};

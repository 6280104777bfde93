/* h_system.c - system endpoints (R-API-8, R-API-7): health that answers
 * with the database or Redis down, statistics, the license (not built yet:
 * a clear error), the audit log, archive records, and /metrics in the
 * Prometheus text format for mcs-api and, from Redis, for the workers.
 * Owns nothing. Thread: the lws loop thread. */
#include "err.h"
#include "feed.h"
#include "handlers.h"
#include "log.h"
#include "mqcmd.h"
#include "reqparse.h"
#include "timeutil.h"
#include "ws.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define MCS_API_VERSION "1.0.0"

/* One value from PostgreSQL as a number, -1 when unavailable. Uses the
 * connection only when it is up (health must not wait for reconnects). */
static long long pg_count(struct api_ctx *ctx, const char *sql)
{
    PGresult *r;
    long long v = -1;
    if(!ctx->pg || PQstatus(ctx->pg) != CONNECTION_OK)
        return -1;
    r = PQexec(ctx->pg, sql);
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    api_pg_check(ctx);
    return v;
}

static cJSON *num_or_null(double v)
{
    return v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

struct workers {
    int instances, up, mqtt_up;
    long long spool_bytes;
    double lag_ms;
};

static void read_workers(redisContext *r, struct workers *w)
{
    redisReply *m = redisCommand(r, "SMEMBERS mcs:instances");
    int64_t now = mcs_now_ms();
    memset(w, 0, sizeof(*w));
    w->lag_ms = -1;
    if(m && m->type == REDIS_REPLY_ARRAY) {
        for(size_t i = 0; i < m->elements; i++) {
            redisReply *v = redisCommand(r, "HMGET mcs:metrics:%s updated_ms spool_bytes "
                                            "lat_p99_ms mqtt_connected",
                                         m->element[i]->str);
            if(v && v->type == REDIS_REPLY_ARRAY && v->elements == 4) {
                long long upd = v->element[0]->str ? strtoll(v->element[0]->str, NULL, 10) : 0;
                w->instances++;
                /* An instance is up while it refreshed its metrics lately. */
                if(now - upd < 10000) {
                    w->up++;
                    if(v->element[1]->str)
                        w->spool_bytes += strtoll(v->element[1]->str, NULL, 10);
                    if(v->element[2]->str && strtod(v->element[2]->str, NULL) > w->lag_ms)
                        w->lag_ms = strtod(v->element[2]->str, NULL);
                    if(v->element[3]->str && !strcmp(v->element[3]->str, "1"))
                        w->mqtt_up = 1;
                }
            }
            freeReplyObject(v);
        }
    }
    freeReplyObject(m);
}

int h_sys_health(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    cJSON *o = cJSON_CreateObject(), *c = cJSON_AddObjectToObject(o, "components"), *x, *m;
    int64_t t0 = mcs_now_us();
    int db_up = 0, redis_up = 0, bad = 0;
    redisContext *r;
    struct workers w;
    struct statvfs sv;
    long long online, total, alarms_today;

    memset(&w, 0, sizeof(w));
    w.lag_ms = -1;
    x = cJSON_AddObjectToObject(c, "database");
    if(api_pg(ctx) && pg_count(ctx, "SELECT 1") == 1)
        db_up = 1;
    cJSON_AddStringToObject(x, "status", db_up ? "up" : "down");
    cJSON_AddItemToObject(x, "latency_ms",
                          db_up ? cJSON_CreateNumber((double)(mcs_now_us() - t0) / 1000.0)
                                : cJSON_CreateNull());
    x = cJSON_AddObjectToObject(c, "redis");
    t0 = mcs_now_us();
    r = api_redis(ctx);
    if(r) {
        redisReply *p = redisCommand(r, "PING");
        redis_up = p && p->type == REDIS_REPLY_STATUS;
        if(!p)
            api_redis_fail(ctx);
        freeReplyObject(p);
    }
    cJSON_AddStringToObject(x, "status", redis_up ? "up" : "down");
    cJSON_AddItemToObject(x, "latency_ms",
                          redis_up ? cJSON_CreateNumber((double)(mcs_now_us() - t0) / 1000.0)
                                   : cJSON_CreateNull());
    if(redis_up && ctx->rds)
        read_workers(ctx->rds, &w);
    x = cJSON_AddObjectToObject(c, "mqtt");
    cJSON_AddStringToObject(x, "status",
                            (w.mqtt_up || mq_connected(ctx->mq)) ? "up"
                            : redis_up                           ? "down"
                                                                 : "unknown");
    cJSON_AddItemToObject(x, "connections", num_or_null(mq_broker_clients(ctx->mq)));
    x = cJSON_AddObjectToObject(c, "worker");
    cJSON_AddStringToObject(x, "status", !redis_up ? "unknown" : w.up ? "up" : "down");
    cJSON_AddItemToObject(x, "queue_size", redis_up ? cJSON_CreateNumber((double)w.spool_bytes)
                                                    : cJSON_CreateNull());
    cJSON_AddNumberToObject(x, "instances", w.up);
    cJSON_AddItemToObject(x, "lag_ms", num_or_null(w.lag_ms));
    x = cJSON_AddObjectToObject(c, "license");
    cJSON_AddStringToObject(x, "status", "unavailable");
    cJSON_AddNullToObject(x, "expires");
    x = cJSON_AddObjectToObject(c, "disk");
    if(statvfs(ctx->cfg.spool_dir[0] ? ctx->cfg.spool_dir : ".", &sv) == 0 && sv.f_blocks) {
        double used = 100.0 * (double)(sv.f_blocks - sv.f_bfree) / (double)sv.f_blocks;
        cJSON_AddStringToObject(x, "status", used < 80 ? "ok" : used < 90 ? "warning" : "critical");
        cJSON_AddNumberToObject(x, "used_percent", (double)(long)(used + 0.5));
        if(used >= 90)
            bad = 1;
    } else if(statvfs(".", &sv) == 0 && sv.f_blocks) {
        double used = 100.0 * (double)(sv.f_blocks - sv.f_bfree) / (double)sv.f_blocks;
        cJSON_AddStringToObject(x, "status", used < 80 ? "ok" : used < 90 ? "warning" : "critical");
        cJSON_AddNumberToObject(x, "used_percent", (double)(long)(used + 0.5));
    } else {
        cJSON_AddStringToObject(x, "status", "unknown");
        cJSON_AddNullToObject(x, "used_percent");
    }
    online = db_up ? pg_count(ctx, "SELECT count(*) FROM devices WHERE status = 'online'") : -1;
    total = db_up ? pg_count(ctx, "SELECT count(*) FROM devices") : -1;
    alarms_today = db_up ? pg_count(ctx, "SELECT count(*) FROM alarm_logs WHERE triggered_at >= "
                                         "date_trunc('day', now())")
                         : -1;
    m = cJSON_AddObjectToObject(o, "metrics");
    cJSON_AddItemToObject(m, "devices_online", num_or_null((double)online));
    cJSON_AddItemToObject(m, "devices_total", num_or_null((double)total));
    cJSON_AddItemToObject(m, "messages_per_min", num_or_null((double)feed_msgs_per_min(ctx->feed)));
    cJSON_AddItemToObject(m, "alarms_today", num_or_null((double)alarms_today));
    cJSON_AddStringToObject(o, "status", !db_up ? "unhealthy"
                                         : (!redis_up || !w.up || bad) ? "degraded"
                                                                       : "healthy");
    cJSON_AddNumberToObject(o, "timestamp", (double)(mcs_now_ms() / 1000));
    /* Put status and timestamp first, as the manual shows them. */
    {
        cJSON *st = cJSON_DetachItemFromObject(o, "status");
        cJSON *ts = cJSON_DetachItemFromObject(o, "timestamp");
        cJSON *out = cJSON_CreateObject();
        cJSON_AddItemToObject(out, "status", st);
        cJSON_AddItemToObject(out, "timestamp", ts);
        cJSON_AddItemToObject(out, "components", cJSON_DetachItemFromObject(o, "components"));
        cJSON_AddItemToObject(out, "metrics", cJSON_DetachItemFromObject(o, "metrics"));
        cJSON_Delete(o);
        o = out;
    }
    return api_json(rs, 200, o);
}

int h_sys_stats(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    PGresult *r = api_query(
        ctx, rs,
        "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM devices WHERE enabled), "
        "(SELECT count(*) FROM devices WHERE status = 'online'), "
        "(SELECT count(DISTINCT sn) FROM alarm_logs WHERE cleared_at IS NULL OR "
        "(category = 'gas' AND ack_at IS NULL)), "
        "(SELECT count(*) FROM alarm_logs WHERE cleared_at IS NULL), "
        "(SELECT count(*) FROM alarm_logs WHERE triggered_at >= date_trunc('day', now())), "
        "pg_database_size(current_database())",
        0, NULL);
    struct api_ws_stats ws;
    cJSON *o;
    static const char *const names[] = {"devices_total", "devices_enabled", "devices_online",
                                        "devices_alarm", "alarms_active",   "alarms_today",
                                        "db_size_bytes"};
    if(!r)
        return 0;
    o = cJSON_CreateObject();
    for(int i = 0; i < 7; i++)
        cJSON_AddItemToObject(o, names[i], api_pg_num(r, 0, i));
    PQclear(r);
    ws_stats(ctx, &ws);
    cJSON_AddItemToObject(o, "messages_per_min",
                          num_or_null((double)feed_msgs_per_min(ctx->feed)));
    cJSON_AddNumberToObject(o, "api_uptime_s", (double)((mcs_now_ms() - ctx->st.started_ms) / 1000));
    cJSON_AddNumberToObject(o, "ws_clients", ws.clients);
    cJSON_AddStringToObject(o, "version", MCS_API_VERSION);
    return api_json(rs, 200, o);
}

int h_sys_license(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    return api_error(rs, 501, E_LIC_INVALID, "license module not available in this build");
}

int h_sys_logs(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[160], where[512] = "WHERE true", count[1024], sql[1024], ts[2][24];
    const char *user = rq_arg(rq, "user"), *action = rq_arg(rq, "action");
    const char *v[4];
    int nv = 0, hs, he;
    int64_t start = 0, end = 0;
    struct api_page pg;
    cJSON *o;
    size_t wl;

    if(rq_page(rq, 200, 20, &pg, err, sizeof(err)) ||
       rq_time(rq, "start", &start, &hs, err, sizeof(err)) ||
       rq_time(rq, "end", &end, &he, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(hs && he && end <= start)
        return api_error(rs, 400, E_BAD_REQ, "end must be after start");
    if((user && (strlen(user) > 64 || !rq_utf8_valid((const unsigned char *)user, strlen(user)))) ||
       (action && (strlen(action) > 64 ||
                   !rq_utf8_valid((const unsigned char *)action, strlen(action)))))
        return api_error(rs, 400, E_BAD_REQ, "user and action are at most 64 bytes");
    wl = strlen(where);
    if(user) {
        v[nv++] = user;
        wl += (size_t)snprintf(where + wl, sizeof(where) - wl, " AND username = $%d", nv);
    }
    if(action) {
        v[nv++] = action;
        wl += (size_t)snprintf(where + wl, sizeof(where) - wl, " AND action = $%d", nv);
    }
    if(hs) {
        snprintf(ts[0], sizeof(ts[0]), "%lld", (long long)start);
        v[nv++] = ts[0];
        wl += (size_t)snprintf(where + wl, sizeof(where) - wl, " AND ts >= to_timestamp($%d)", nv);
    }
    if(he) {
        snprintf(ts[1], sizeof(ts[1]), "%lld", (long long)end);
        v[nv++] = ts[1];
        snprintf(where + wl, sizeof(where) - wl, " AND ts < to_timestamp($%d)", nv);
    }
    snprintf(count, sizeof(count), "SELECT count(*) FROM audit_logs %s", where);
    snprintf(sql, sizeof(sql),
             "SELECT id, " ISO("ts") " AS ts, username, action, target, before, after, ip "
             "FROM audit_logs %s ORDER BY ts DESC, id DESC",
             where);
    o = api_list(ctx, rs, count, sql, nv, v, &pg);
    return o ? api_json(rs, 200, o) : 0;
}

int h_sys_archives(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[160];
    struct api_page pg;
    PGresult *r;
    cJSON *o;

    if(rq_page(rq, 200, 20, &pg, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    o = api_list(ctx, rs, "SELECT count(*) FROM archive_logs",
                 "SELECT id, to_char(day, 'YYYY-MM-DD') AS date, file_name, size_bytes, "
                 "row_count, md5, status, error, " ISO("created_at") " AS created_at "
                 "FROM archive_logs ORDER BY day DESC",
                 0, NULL, &pg);
    if(!o)
        return 0;
    /* The last run of the archive job (job_runs via job_last_runs), null
     * before the first. */
    r = api_query(ctx, rs,
                  "SELECT id, trigger, " ISO("started_at") " AS started_at, "
                  ISO("ended_at") " AS ended_at, outcome, error, detail "
                  "FROM job_last_runs WHERE job = 'archive'",
                  0, NULL);
    if(!r) {
        cJSON_Delete(o);
        return 0;
    }
    if(PQntuples(r) == 1)
        cJSON_AddItemToObject(o, "last_run", api_pg_row(r, 0));
    else
        cJSON_AddNullToObject(o, "last_run");
    PQclear(r);
    return api_json(rs, 200, o);
}

/* Prometheus text: one sample line. */
static void sample(char **buf, size_t *n, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sample(char **buf, size_t *n, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int k;
    if(*n + 512 > *cap) {
        size_t nc = *cap ? *cap * 2 : 16384;
        char *nb = realloc(*buf, nc);
        if(!nb)
            return;
        *buf = nb;
        *cap = nc;
    }
    va_start(ap, fmt);
    k = vsnprintf(*buf + *n, *cap - *n, fmt, ap);
    va_end(ap);
    if(k > 0 && (size_t)k < *cap - *n)
        *n += (size_t)k;
}

/* Prometheus text: a counter without labels, with its TYPE line. */
static void counter(char **buf, size_t *n, size_t *cap, const char *name, uint64_t v)
{
    sample(buf, n, cap, "# TYPE %s counter\n%s %llu\n", name, name, (unsigned long long)v);
}

int h_metrics(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char *b = NULL;
    size_t n = 0, cap = 0;
    struct api_ws_stats ws;
    uint64_t ev = 0, dropped = 0, frames = 0;
    redisContext *r;
    static const char *const cls[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};

    ws_stats(ctx, &ws);
    if(ctx->feed)
        feed_counts(ctx->feed, &ev, &dropped, &frames);
    sample(&b, &n, &cap, "# TYPE mcs_api_http_requests_total counter\n");
    for(int i = 1; i < 6; i++)
        sample(&b, &n, &cap, "mcs_api_http_requests_total{class=\"%s\"} %llu\n", cls[i],
               (unsigned long long)ctx->st.http_by_class[i]);
    sample(&b, &n, &cap, "# TYPE mcs_api_logins_total counter\n");
    sample(&b, &n, &cap, "mcs_api_logins_total{outcome=\"ok\"} %llu\n",
           (unsigned long long)ctx->st.logins_ok);
    sample(&b, &n, &cap, "mcs_api_logins_total{outcome=\"failed\"} %llu\n",
           (unsigned long long)ctx->st.logins_failed);
    sample(&b, &n, &cap, "mcs_api_logins_total{outcome=\"throttled\"} %llu\n",
           (unsigned long long)ctx->st.logins_throttled);
    counter(&b, &n, &cap, "mcs_api_auth_rejected_total", ctx->st.auth_rejected);
    counter(&b, &n, &cap, "mcs_api_commands_total", ctx->st.commands);
    counter(&b, &n, &cap, "mcs_api_audit_rows_total", ctx->st.audit_rows);
    counter(&b, &n, &cap, "mcs_api_audit_failed_total", ctx->st.audit_failed);
    counter(&b, &n, &cap, "mcs_api_bodies_too_large_total", ctx->st.bodies_too_large);
    sample(&b, &n, &cap, "# TYPE mcs_api_ws_clients gauge\nmcs_api_ws_clients %d\n", ws.clients);
    sample(&b, &n, &cap, "# TYPE mcs_api_ws_unauthed gauge\nmcs_api_ws_unauthed %d\n",
           ws.unauthed);
    counter(&b, &n, &cap, "mcs_api_ws_unauthed_closed_total", ws.unauthed_closed);
    counter(&b, &n, &cap, "mcs_api_ws_frames_total", ws.frames_sent);
    counter(&b, &n, &cap, "mcs_api_ws_realtime_skipped_total", ws.realtime_skipped);
    {
        /* Realtime frame built -> its last byte in the client's socket. */
        static const int bound[WS_NDELIVERY] = WS_DELIVERY_BUCKETS;
        uint64_t cum = 0;
        sample(&b, &n, &cap, "# TYPE mcs_api_ws_delivery_ms histogram\n");
        for(int i = 0; i <= WS_NDELIVERY; i++) {
            char le[16];
            cum += ws.delivered[i];
            if(i < WS_NDELIVERY)
                snprintf(le, sizeof(le), "%d", bound[i]);
            else
                snprintf(le, sizeof(le), "+Inf");
            sample(&b, &n, &cap, "mcs_api_ws_delivery_ms_bucket{le=\"%s\"} %llu\n", le,
                   (unsigned long long)cum);
        }
        sample(&b, &n, &cap, "mcs_api_ws_delivery_ms_sum %llu\nmcs_api_ws_delivery_ms_count %llu\n",
               (unsigned long long)ws.delivered_ms_sum, (unsigned long long)cum);
    }
    counter(&b, &n, &cap, "mcs_api_ws_dropped_total", ws.dropped);
    counter(&b, &n, &cap, "mcs_api_alarm_events_total", ev);
    sample(&b, &n, &cap, "# TYPE mcs_api_uptime_seconds gauge\nmcs_api_uptime_seconds %lld\n",
           (long long)((mcs_now_ms() - ctx->st.started_ms) / 1000));
    /* The workers publish their counters in Redis (docs/INTERFACES.md). */
    r = api_redis(ctx);
    if(r) {
        redisReply *m = redisCommand(r, "SMEMBERS mcs:instances");
        if(!m)
            api_redis_fail(ctx);
        if(m && m->type == REDIS_REPLY_ARRAY) {
            for(size_t i = 0; i < m->elements; i++) {
                const char *id = m->element[i]->str;
                redisReply *h = ctx->rds ? redisCommand(ctx->rds, "HGETALL mcs:metrics:%s", id)
                                         : NULL;
                if(!rq_sn_valid(id) && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(id)) {
                    freeReplyObject(h);
                    continue;
                }
                if(h && h->type == REDIS_REPLY_ARRAY)
                    for(size_t k = 0; k + 1 < h->elements; k += 2) {
                        const char *name = h->element[k]->str, *val = h->element[k + 1]->str;
                        char *end;
                        double d;
                        if(!name || !val ||
                           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
                            continue;
                        d = strtod(val, &end);
                        if(end == val || *end)
                            continue;
                        sample(&b, &n, &cap, "mcs_worker_%s{instance=\"%s\"} %.17g\n", name, id, d);
                    }
                freeReplyObject(h);
            }
        }
        freeReplyObject(m);
    }
    if(ctx->pg && PQstatus(ctx->pg) == CONNECTION_OK) {
        PGresult *q = PQexec(ctx->pg, "SELECT channel, status, count(*) FROM alarm_outbox "
                                      "GROUP BY 1, 2 ORDER BY 1, 2");
        if(PQresultStatus(q) == PGRES_TUPLES_OK) {
            sample(&b, &n, &cap, "# TYPE mcs_notifications gauge\n");
            for(int i = 0; i < PQntuples(q); i++)
                if(strspn(PQgetvalue(q, i, 0), "abcdefghijklmnopqrstuvwxyz_") ==
                       strlen(PQgetvalue(q, i, 0)) &&
                   strspn(PQgetvalue(q, i, 1), "abcdefghijklmnopqrstuvwxyz_") ==
                       strlen(PQgetvalue(q, i, 1)))
                    sample(&b, &n, &cap, "mcs_notifications{channel=\"%s\",status=\"%s\"} %s\n",
                           PQgetvalue(q, i, 0), PQgetvalue(q, i, 1), PQgetvalue(q, i, 2));
        }
        PQclear(q);
        q = PQexec(ctx->pg, "SELECT count(*) FROM alarm_logs WHERE cleared_at IS NULL");
        if(PQresultStatus(q) == PGRES_TUPLES_OK && PQntuples(q) == 1)
            sample(&b, &n, &cap, "# TYPE mcs_alarms_active gauge\nmcs_alarms_active %s\n",
                   PQgetvalue(q, 0, 0));
        PQclear(q);
        api_pg_check(ctx);
    }
    if(!b)
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    return api_raw(rs, 200, "text/plain; version=0.0.4", b, n);
}

/* h_devices.c - the device endpoints (R-API-2, R-API-4, R-MQ-4): list,
 * CRUD, realtime (Redis), history from the (sn, time DESC) index, commands
 * to the broker, floor-plan positions. Every change is audited in the same
 * transaction as the change itself (R-API-7).
 * Owns nothing. Thread: the lws loop thread. */
#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "localday.h"
#include "log.h"
#include "mqcmd.h"
#include "reqparse.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define HISTORY_MAX_S (7 * 86400)
/* An alarm shown on screens (docs/ALARMS.md): open, or a latched gas alarm
 * not yet acknowledged. */
#define ON_SCREEN "(a.cleared_at IS NULL OR (a.category = 'gas' AND a.ack_at IS NULL))"

static const char DEV_COLS[] =
    "d.sn, d.name, d.location, "
    "CASE WHEN al.t IS NOT NULL THEN 'alarm' ELSE d.status END AS status, "
    "al.t AS alarm_type, al.lv AS alarm_level, lp.ppm AS last_ppm, " ISO("d.last_seen") " AS last_seen, "
    "d.high_limit, d.low_limit, d.high_limit2, d.low_limit2, d.hysteresis, d.pos_x, d.pos_y, d.calib_k, d.calib_b, d.calib_t_ref, "
    "d.calib_t_comp, d.unit, d.range_max, d.enabled, d.fw_ver, d.last_err, d.bat, d.rssi, "
    "d.pkt_recv, d.pkt_lost, " ISO("d.created_at") " AS created_at, "
    ISO("d.updated_at") " AS updated_at";
static const char DEV_FROM[] =
    " FROM devices d LEFT JOIN LATERAL (SELECT a.alarm_type AS t, a.level AS lv FROM "
    "alarm_logs a WHERE a.sn = d.sn AND " ON_SCREEN " ORDER BY a.level DESC, "
    "a.triggered_at DESC LIMIT 1) al ON true "
    "LEFT JOIN LATERAL (SELECT s.ppm FROM sensor_data s WHERE s.sn = d.sn "
    "ORDER BY s.time DESC LIMIT 1) lp ON true ";

/* Drops the cached copies of a device that mcsd and the CLI keep (R-ST-7). */
static void uncache(struct api_ctx *ctx, const char *sn)
{
    redisContext *r = api_redis(ctx);
    redisReply *rep;
    if(!r)
        return;
    rep = redisCommand(r, "DEL calib:%s device:%s", sn, sn);
    if(!rep)
        api_redis_fail(ctx);
    freeReplyObject(rep);
}

static long debug_remaining(struct api_ctx *ctx, const char *sn)
{
    redisContext *r = api_redis(ctx);
    redisReply *rep;
    long t = 0;
    if(!r)
        return 0;
    rep = redisCommand(r, "TTL debug:%s", sn);
    if(!rep)
        api_redis_fail(ctx);
    else if(rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
        t = (long)rep->integer;
    freeReplyObject(rep);
    return t;
}

/* The device as JSON, NULL with *found = 0 when absent, NULL with rs set on
 * a database error. `lock` adds FOR UPDATE OF d (inside a transaction). */
static cJSON *dev_fetch(struct api_ctx *ctx, struct api_resp *rs, const char *sn, int lock,
                        int *found)
{
    char sql[2048];
    const char *v[1] = {sn};
    PGresult *r;
    cJSON *o;

    *found = 0;
    snprintf(sql, sizeof(sql), "SELECT %s%sWHERE d.sn = $1%s", DEV_COLS, DEV_FROM,
             lock ? " FOR UPDATE OF d" : "");
    r = api_query(ctx, rs, sql, 1, v);
    if(!r)
        return NULL;
    if(PQntuples(r) != 1) {
        PQclear(r);
        return NULL;
    }
    *found = 1;
    o = api_pg_row(r, 0);
    PQclear(r);
    return o;
}

/* Begins a transaction and fetches the device locked FOR UPDATE. NULL, with
 * no transaction left open, after an error response on rs (404 when there
 * is no such device). */
static cJSON *dev_lock(struct api_ctx *ctx, struct api_resp *rs, const char *sn)
{
    cJSON *o;
    int found;

    if(api_begin(ctx, rs))
        return NULL;
    o = dev_fetch(ctx, rs, sn, 1, &found);
    if(!o) {
        api_rollback(ctx);
        if(!rs->status)
            api_error(rs, 404, E_DEV_NOTFOUND, "SN: %s", sn);
    }
    return o;
}

static int bad_sn(struct api_resp *rs, const char *sn)
{
    return api_error(rs, 400, E_BAD_REQ, "sn must match ^[A-Za-z0-9_-]{1,32}$");
}

/* Escapes LIKE wildcards of user text so that search is a plain substring. */
static void like_pattern(const char *s, char *out, size_t n)
{
    size_t o = 0;
    if(n < 3)
        return;
    out[o++] = '%';
    for(; *s && o + 3 < n; s++) {
        if(*s == '%' || *s == '_' || *s == '\\')
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o++] = '%';
    out[o] = '\0';
}

int h_dev_list(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[128], where[512] = "", count[1024], sql[4096], pat[200];
    struct api_page pg;
    const char *status = rq_arg(rq, "status"), *search = rq_arg(rq, "search");
    const char *v[1];
    int nv = 0;
    cJSON *o;

    if(rq_page(rq, 200, 20, &pg, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(status && strcmp(status, "online") && strcmp(status, "offline") &&
       strcmp(status, "alarm"))
        return api_error(rs, 400, E_BAD_REQ, "status must be online, offline or alarm");
    if(search && strlen(search) > 64)
        return api_error(rs, 400, E_BAD_REQ, "search is at most 64 bytes");
    if(search && !rq_utf8_valid((const unsigned char *)search, strlen(search)))
        return api_error(rs, 400, E_BAD_REQ, "search is not valid UTF-8");
    if(status) {
#define ALARMED "EXISTS (SELECT 1 FROM alarm_logs a WHERE a.sn = d.sn AND " ON_SCREEN ")"
        /* Semi-joins against the few alarms on screen (partial indexes of
         * migration 010), so that counting 10,000 devices stays cheap. */
        snprintf(where, sizeof(where), "%s",
                 !strcmp(status, "alarm")    ? ALARMED
                 : !strcmp(status, "online") ? "d.status = 'online' AND NOT " ALARMED
                                             : "d.status <> 'online' AND NOT " ALARMED);
#undef ALARMED
    }
    if(search && *search) {
        like_pattern(search, pat, sizeof(pat));
        v[nv++] = pat;
        snprintf(where + strlen(where), sizeof(where) - strlen(where),
                 "%s(d.sn ILIKE $1 OR d.name ILIKE $1 OR d.location ILIKE $1)",
                 where[0] ? " AND " : "");
    }
    snprintf(count, sizeof(count), "SELECT count(*) FROM devices d%s%s",
             where[0] ? " WHERE " : "", where);
    snprintf(sql, sizeof(sql), "SELECT %s%s%s%s ORDER BY d.sn", DEV_COLS, DEV_FROM,
             where[0] ? "WHERE " : "", where);
    o = api_list(ctx, rs, count, sql, nv, v, &pg);
    return o ? api_json(rs, 200, o) : 0;
}

int h_dev_get(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0];
    int found;
    cJSON *o;

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    o = dev_fetch(ctx, rs, sn, 0, &found);
    if(!o)
        return found || rs->status ? 0 : api_error(rs, 404, E_DEV_NOTFOUND, "SN: %s", sn);
    cJSON_AddNumberToObject(o, "debug_remaining_s", (double)debug_remaining(ctx, sn));
    return api_json(rs, 200, o);
}

/* Text parameters of the given fields, in dev_columns order. */
static int dev_params(const struct dev_in *d, char txt[DF_COUNT][40], const char **v, int *nv,
                      int *cols)
{
    int n = 0;
    for(int f = 0; f < DF_COUNT; f++) {
        if(!d->set[f])
            continue;
        cols[n] = f;
        if(d->is_null[f])
            v[n] = NULL;
        else if(f == DF_NAME || f == DF_LOCATION || f == DF_UNIT)
            v[n] = d->str[f];
        else if(f == DF_ENABLED)
            v[n] = d->flag[f] ? "true" : "false";
        else {
            snprintf(txt[f], sizeof(txt[f]), "%.17g", d->num[f]);
            v[n] = txt[f];
        }
        n++;
    }
    *nv = n;
    return n;
}

/* The request body checked by reqparse: with d, a device body of POST
 * (create) or PUT into d (rq_device); else a command body into *payload
 * (caller frees) and *kind (rq_command). 0, or MCS_EINVAL with a 400 on rs
 * (business code 40004 when calibration is at fault). */
static int checked_body(const struct api_req *rq, struct api_resp *rs, struct dev_in *d,
                        int create, cJSON **payload, const char **kind)
{
    char err[160];
    int calib = 0, rc = 0;
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err));

    if(!j) {
        api_error(rs, 400, E_BAD_REQ, "%s", err);
        return MCS_EINVAL;
    }
    if(d ? rq_device(j, create, d, &calib, err, sizeof(err))
         : rq_command(j, payload, kind, &calib, err, sizeof(err))) {
        api_error(rs, 400, calib ? E_CALIB : E_BAD_REQ, "%s", err);
        rc = MCS_EINVAL;
    }
    cJSON_Delete(j);
    return rc;
}

int h_dev_add(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char txt[DF_COUNT][40], sql[1024], vals[512];
    cJSON *after;
    struct dev_in d;
    const char *v[DF_COUNT + 1];
    int cols[DF_COUNT], nv = 0, found, twin;
    PGresult *r;
    size_t o1, o2;

    if(checked_body(rq, rs, &d, 1, NULL, NULL))
        return 0;
    v[0] = d.sn;
    dev_params(&d, txt, v + 1, &nv, cols);
    o1 = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO devices (sn");
    o2 = (size_t)snprintf(vals, sizeof(vals), "$1");
    for(int i = 0; i < nv; i++) {
        o1 += (size_t)snprintf(sql + o1, sizeof(sql) - o1, ", %s", dev_columns[cols[i]]);
        o2 += (size_t)snprintf(vals + o2, sizeof(vals) - o2, ", $%d", i + 2);
    }
    snprintf(sql + o1, sizeof(sql) - o1, ") VALUES (%s) ON CONFLICT DO NOTHING RETURNING sn",
             vals);
    if(api_begin(ctx, rs))
        return 0;
    if(api_license_device_room(ctx, rs)) { /* issue #17: 20003 beyond max_devices */
        api_rollback(ctx);
        return 0;
    }
    /* SNs are unique ignoring case (migration 065's devices_sn_lower); this
     * also covers the case twins an upgraded database kept, which that
     * index leaves out. */
    r = api_query(ctx, rs, "SELECT 1 FROM devices WHERE lower(sn) = lower($1)", 1, v);
    twin = r && PQntuples(r);
    if(r && !twin) {
        PQclear(r);
        r = api_query(ctx, rs, sql, nv + 1, v);
    }
    if(!r) {
        api_rollback(ctx);
        return 0;
    }
    if(twin || PQntuples(r) != 1) {
        PQclear(r);
        api_rollback(ctx);
        return api_error(rs, 409, E_DEV_EXISTS, "SN: %s (SNs are unique ignoring case)", d.sn);
    }
    PQclear(r);
    after = dev_fetch(ctx, rs, d.sn, 0, &found);
    if(!after) {
        api_rollback(ctx);
        return rs->status ? 0 : api_error(rs, 500, E_INTERNAL, "device vanished");
    }
    if(audit_commit(ctx, rq, rs, "device.add", d.sn, NULL, after)) {
        cJSON_Delete(after);
        return 0;
    }
    uncache(ctx, d.sn);
    return api_json(rs, 201, after);
}

int h_dev_put(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0];
    char txt[DF_COUNT][40], sql[1024];
    cJSON *before = NULL, *after = NULL;
    struct dev_in d;
    const char *v[DF_COUNT + 1];
    int cols[DF_COUNT], nv = 0, found;
    PGresult *r;
    size_t o;

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    if(checked_body(rq, rs, &d, 0, NULL, NULL))
        return 0;
    v[0] = sn;
    dev_params(&d, txt, v + 1, &nv, cols);
    if(!nv)
        return api_error(rs, 400, E_BAD_REQ, "no field to change");
    o = (size_t)snprintf(sql, sizeof(sql), "UPDATE devices SET updated_at = now()");
    for(int i = 0; i < nv; i++)
        o += (size_t)snprintf(sql + o, sizeof(sql) - o, ", %s = $%d", dev_columns[cols[i]], i + 2);
    snprintf(sql + o, sizeof(sql) - o,
             " WHERE sn = $1 RETURNING (low_limit IS NOT NULL AND high_limit IS NOT NULL AND "
             "low_limit >= high_limit) OR (high_limit2 IS NOT NULL AND high_limit IS NOT NULL "
             "AND high_limit2 < high_limit) OR (low_limit2 IS NOT NULL AND low_limit IS NOT NULL "
             "AND low_limit2 > low_limit)");
    before = dev_lock(ctx, rs, sn);
    if(!before)
        return 0;
    r = api_query(ctx, rs, sql, nv + 1, v);
    if(!r)
        goto fail;
    if(PQgetvalue(r, 0, 0)[0] == 't') {
        PQclear(r);
        api_error(rs, 400, E_BAD_REQ,
                  "limits must be ordered low_limit2 <= low_limit < high_limit <= high_limit2");
        goto fail;
    }
    PQclear(r);
    after = dev_fetch(ctx, rs, sn, 0, &found);
    /* Name and position are not in the devices trigger: screens hear it here. */
    if(!after || api_notify_config(ctx, rs, "devices"))
        goto fail;
    if(audit_commit(ctx, rq, rs, "device.update", sn, before, after))
        goto out;
    uncache(ctx, sn);
    api_json(rs, 200, after);
    after = NULL;
    goto out;
fail:
    api_rollback(ctx);
out:
    cJSON_Delete(before);
    cJSON_Delete(after);
    return 0;
}

int h_dev_del(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0];
    const char *v[1] = {sn};
    cJSON *before;
    int rc;
    PGresult *r;

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    before = dev_lock(ctx, rs, sn);
    if(!before)
        return 0;
    r = api_query(ctx, rs, "DELETE FROM devices WHERE sn = $1", 1, v);
    if(!r) {
        api_rollback(ctx);
        cJSON_Delete(before);
        return 0;
    }
    PQclear(r);
    rc = audit_commit(ctx, rq, rs, "device.delete", sn, before, NULL);
    cJSON_Delete(before);
    if(rc)
        return 0;
    uncache(ctx, sn);
    return api_saved(rs, "设备已删除");
}

static int dev_exists(struct api_ctx *ctx, struct api_resp *rs, const char *sn)
{
    const char *v[1] = {sn};
    PGresult *r = api_query(ctx, rs, "SELECT 1 FROM devices WHERE sn = $1", 1, v);
    int n;
    if(!r)
        return -1;
    n = PQntuples(r);
    PQclear(r);
    if(!n)
        api_error(rs, 404, E_DEV_NOTFOUND, "SN: %s", sn);
    return n ? 1 : 0;
}

int h_dev_realtime(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0];
    redisContext *r;
    redisReply *rt = NULL, *on = NULL;
    cJSON *o, *data = NULL;

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    if(dev_exists(ctx, rs, sn) != 1)
        return 0;
    r = api_redis(ctx);
    if(!r)
        return api_error(rs, 503, E_UNAVAIL, "redis unavailable");
    redisAppendCommand(r, "GET realtime:%s", sn);
    redisAppendCommand(r, "EXISTS online:%s", sn);
    if(redisGetReply(r, (void **)&rt) != REDIS_OK || redisGetReply(r, (void **)&on) != REDIS_OK) {
        freeReplyObject(rt);
        api_redis_fail(ctx);
        return api_error(rs, 503, E_UNAVAIL, "redis unavailable");
    }
    if(rt && rt->type == REDIS_REPLY_STRING)
        data = cJSON_ParseWithLength(rt->str, rt->len);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sn", sn);
    cJSON_AddBoolToObject(o, "online", on && on->type == REDIS_REPLY_INTEGER && on->integer > 0);
    cJSON_AddStringToObject(o, "status",
                            on && on->type == REDIS_REPLY_INTEGER && on->integer > 0 ? "online"
                                                                                      : "offline");
    freeReplyObject(rt);
    freeReplyObject(on);
    cJSON_AddNumberToObject(o, "debug_remaining_s", (double)debug_remaining(ctx, sn));
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateNull());
    return api_json(rs, 200, o);
}

/* 1 when a day the plant's calendar gives [start, end) is archived: the
 * range is then read as `mcs history` reads it (h_history.c). -1 with an
 * error response on rs. */
static int touches_archive(struct api_ctx *ctx, struct api_resp *rs, int64_t start, int64_t end)
{
    char a[16], b[16];
    const char *v[2] = {a, b};
    PGresult *r;
    int yes;

    mcs_day_iso(mcs_local_day(start), a, sizeof(a));
    mcs_day_iso(mcs_local_day(end - 1), b, sizeof(b));
    r = api_query(ctx, rs,
                  "SELECT 1 FROM archive_logs WHERE status = 'archived' AND "
                  "day BETWEEN $1::date AND $2::date LIMIT 1",
                  2, v);
    if(!r)
        return -1;
    yes = PQntuples(r) > 0;
    PQclear(r);
    return yes;
}

int h_dev_history(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0], *ivs = rq_arg(rq, "interval");
    char err[128], a[24], b[24], ivtxt[40], sa[40], sb[40];
    int64_t start = 0, end = 0;
    int hs, he, cold;
    struct api_page pg;
    long iv;
    const char *v[5];
    PGresult *r;
    cJSON *o, *pts;
    long long total = 0;

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    if(rq_time(rq, "start", &start, &hs, err, sizeof(err)) ||
       rq_time(rq, "end", &end, &he, err, sizeof(err)) ||
       rq_page(rq, 10000, 2000, &pg, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(!he)
        end = mcs_now_ms() / 1000;
    if(!hs)
        start = end - 86400;
    if(end <= start)
        return api_error(rs, 400, E_BAD_REQ, "end must be after start");
    if(end - start > HISTORY_MAX_S)
        return api_error(rs, 400, E_BAD_REQ, "at most 7 days per request (R-API-4)");
    iv = rq_interval(ivs ? ivs : "1m");
    if(iv < 0)
        return api_error(rs, 400, E_BAD_REQ, "interval must be raw, 1m, 5m, 15m, 30m, 1h, 6h or 1d");
    if(dev_exists(ctx, rs, sn) != 1)
        return 0;
    cold = touches_archive(ctx, rs, start, end);
    if(cold < 0)
        return 0;
    if(cold)
        return h_dev_history_cold(ctx, rs, sn, start, end, iv, ivs ? ivs : "1m", &pg);
    snprintf(a, sizeof(a), "%lld", (long long)start);
    snprintf(b, sizeof(b), "%lld", (long long)end);
    snprintf(ivtxt, sizeof(ivtxt), "%ld seconds", iv);
    v[0] = sn;
    v[1] = a;
    v[2] = b;
    if(iv == 0) {
        v[3] = pg.lim;
        v[4] = pg.off;
        r = api_query(ctx, rs,
                      "SELECT " ISO("time") ", ppm, temp, ppm, ppm, 1, count(*) OVER () "
                      "FROM sensor_data WHERE sn = $1 AND time >= to_timestamp($2) AND "
                      "time < to_timestamp($3) ORDER BY time LIMIT $4 OFFSET $5",
                      5, v);
    } else {
        const char *w[6] = {sn, a, b, ivtxt, pg.lim, pg.off};
        r = api_query(ctx, rs,
                      "SELECT " ISO("bk") ", round(avg(ppm)::numeric, 3), "
                      "round(avg(temp)::numeric, 2), min(ppm), max(ppm), count(*), "
                      "count(*) OVER () FROM (SELECT date_bin($4::interval, time, "
                      "TIMESTAMPTZ 'epoch') bk, ppm, temp FROM sensor_data WHERE sn = $1 AND "
                      "time >= to_timestamp($2) AND time < to_timestamp($3)) s "
                      "GROUP BY bk ORDER BY bk LIMIT $5 OFFSET $6",
                      6, w);
    }
    if(!r)
        return 0;
    hist_iso(start, sa, sizeof(sa));
    hist_iso(end, sb, sizeof(sb));
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sn", sn);
    cJSON_AddStringToObject(o, "start", sa);
    cJSON_AddStringToObject(o, "end", sb);
    cJSON_AddStringToObject(o, "interval", ivs ? ivs : "1m");
    cJSON_AddStringToObject(o, "source", "hot");
    pts = cJSON_CreateArray();
    for(int i = 0; i < PQntuples(r); i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddItemToObject(p, "ts", api_pg_str(r, i, 0));
        cJSON_AddItemToObject(p, "ppm", api_pg_num(r, i, 1));
        cJSON_AddItemToObject(p, "temp", api_pg_num(r, i, 2));
        cJSON_AddItemToObject(p, "ppm_min", api_pg_num(r, i, 3));
        cJSON_AddItemToObject(p, "ppm_max", api_pg_num(r, i, 4));
        cJSON_AddItemToObject(p, "count", api_pg_num(r, i, 5));
        cJSON_AddItemToArray(pts, p);
        total = strtoll(PQgetvalue(r, i, 6), NULL, 10);
    }
    PQclear(r);
    api_page_fields(o, total, &pg);
    cJSON_AddItemToObject(o, "points", pts);
    return api_json(rs, 200, o);
}

/* Seconds a device has to answer a command once it is online: an OTA
 * answers "done" only after its download. */
static int cmd_deadline_s(const struct api_ctx *ctx, const char *kind)
{
    int s = ctx->cfg.cmd_deadline_s;
    return !strcmp(kind, "ota") && s < 900 ? 900 : s;
}

/* Records a command before it is sent, committed on its own so that the
 * device's answer always finds its row, and adds the row's id to payload
 * (the device echoes it in its result). sn NULL: a broadcast. online: the
 * deadline starts now; otherwise when the device comes back (mcsd). Returns
 * the command id, or 0 with an error response on rs. */
static long long cmd_record(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs,
                            const char *sn, const char *kind, cJSON *payload, int online)
{
    char dl[16], *js = cJSON_PrintUnformatted(payload);
    const char *v[6] = {sn, kind, js, rq->user, dl, online ? "1" : NULL};
    PGresult *r;
    long long id = 0;

    if(!js)
        return api_error(rs, 500, E_INTERNAL, "out of memory"), 0;
    snprintf(dl, sizeof(dl), "%d", cmd_deadline_s(ctx, kind));
    r = api_query(ctx, rs,
                  "INSERT INTO device_commands (cmd_id, sn, cmd, payload, sent_by, deadline_s, "
                  "due_at) SELECT c, $1, $2, $3::jsonb || jsonb_build_object('id', c::text), "
                  "NULLIF($4, ''), $5::int, CASE WHEN $6::text IS NULL THEN NULL "
                  "ELSE now() + make_interval(secs => $5::int) END "
                  "FROM nextval('device_command_ids') c RETURNING cmd_id",
                  6, v);
    free(js);
    if(!r)
        return 0;
    id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    cJSON_AddStringToObject(payload, "id", PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

/* After the send: "delivered" once the broker's PUBACK came (waited for up
 * to 2 s, on a local broker it takes milliseconds), "failed" when the
 * command never went out. Best effort: a row left "sent" still expires. */
static void cmd_track(struct api_ctx *ctx, long long id, int sent, const struct mq_track *t)
{
    struct api_resp scratch;
    char ids[24];
    const char *v[1] = {ids};
    PGresult *r;

    if(!id)
        return;
    if(sent && mq_track_wait(ctx->mq, t, 2000) != 0)
        return;
    memset(&scratch, 0, sizeof(scratch));
    snprintf(ids, sizeof(ids), "%lld", id);
    r = api_query(ctx, &scratch,
                  sent ? "UPDATE device_commands SET state = 'delivered', delivered_at = now() "
                         "WHERE cmd_id = $1 AND state = 'sent'"
                       : "UPDATE device_commands SET state = 'failed', result_at = now(), "
                         "reason = 'broker unavailable' WHERE cmd_id = $1 AND state = 'sent'",
                  1, v);
    PQclear(r);
    free(scratch.body);
}

static int publish_cmd(struct api_ctx *ctx, struct api_resp *rs, const char *topic,
                       const cJSON *payload, struct mq_track *t)
{
    char *s = cJSON_PrintUnformatted(payload);
    int rc;
    if(!s)
        return api_error(rs, 500, E_INTERNAL, "out of memory"), MCS_ENOMEM;
    rc = mq_publish_track(ctx->mq, topic, s, t);
    free(s);
    if(rc)
        api_error(rs, 503, E_UNAVAIL, "broker unavailable");
    else
        ctx->st.commands++;
    return rc;
}

/* What the audit row of a command records: its topic and payload. */
static cJSON *command_record(const char *topic, const cJSON *payload)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON_AddItemToObject(o, "payload", cJSON_Duplicate(payload, 1));
    return o;
}

/* The answer once a command is published; takes payload. 202: the device
 * is offline and gets it when it comes back. */
static int command_sent(struct api_resp *rs, int status, const char *topic, cJSON *payload,
                        long remaining, long long id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", status == 202 ? "设备离线, 命令将在设备上线后送达"
                                                        : "命令已下发");
    cJSON_AddNumberToObject(o, "command_id", (double)id);
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON_AddItemToObject(o, "payload", payload);
    cJSON_AddNumberToObject(o, "debug_remaining_s", (double)remaining);
    cJSON_AddBoolToObject(o, "queued", status == 202);
    return api_json(rs, status, o);
}

int h_dev_command(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0], *kind = "";
    char topic[128], k[40], b[40], t[40];
    cJSON *payload = NULL, *o, *before = NULL, *after = NULL;
    int found, online;
    redisContext *r;
    redisReply *on;
    long remaining = 0;
    long long cid = 0, sent_id;
    struct mq_track trk = {0, 0};

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    if(checked_body(rq, rs, NULL, 0, &payload, &kind))
        return 0;
    if(dev_exists(ctx, rs, sn) != 1)
        goto out;
    r = api_redis(ctx);
    if(!r) {
        api_error(rs, 503, E_UNAVAIL, "redis unavailable: online state unknown");
        goto out;
    }
    on = redisCommand(r, "EXISTS online:%s", sn);
    if(!on) {
        api_redis_fail(ctx);
        api_error(rs, 503, E_UNAVAIL, "redis unavailable: online state unknown");
        goto out;
    }
    online = on->type == REDIS_REPLY_INTEGER && on->integer > 0;
    freeReplyObject(on);
    /* An offline device gets the command when it comes back: the broker
     * holds QoS 1 messages for its persistent session (the firmware keeps
     * one), and the command's deadline starts only then (mcsd, cmdres.c). */
    if(!mq_connected(ctx->mq)) {
        api_error(rs, 503, E_UNAVAIL, "broker unavailable");
        goto out;
    }
    snprintf(topic, sizeof(topic), "%s/%s/cmd", ctx->cfg.mqtt_prefix, sn);
    cid = cmd_record(ctx, rq, rs, sn, kind, payload, online);
    if(!cid)
        goto out;
    if(api_begin(ctx, rs))
        goto out;
    if(!strcmp(kind, "calib")) {
        /* The registry holds the calibration mcsd applies (R-PR-2). */
        const char *v[4] = {sn, k, b, t};
        PGresult *res;
        before = dev_fetch(ctx, rs, sn, 1, &found);
        if(!before)
            goto fail;
        snprintf(k, sizeof(k), "%.17g", cJSON_GetObjectItem(payload, "k")->valuedouble);
        snprintf(b, sizeof(b), "%.17g", cJSON_GetObjectItem(payload, "b")->valuedouble);
        snprintf(t, sizeof(t), "%.17g", cJSON_GetObjectItem(payload, "t_comp")->valuedouble);
        res = api_query(ctx, rs,
                        "UPDATE devices SET calib_k = $2, calib_b = $3, calib_t_comp = $4, "
                        "updated_at = now() WHERE sn = $1",
                        4, v);
        if(!res)
            goto fail;
        PQclear(res);
        after = dev_fetch(ctx, rs, sn, 0, &found);
        if(!after)
            goto fail;
    }
    o = command_record(topic, payload);
    if(after) {
        cJSON_AddItemToObject(o, "device_before", before);
        cJSON_AddItemToObject(o, "device_after", cJSON_Duplicate(after, 1));
        before = NULL;
    }
    if(audit_log(ctx, rq, "device.command", sn, NULL, o)) {
        cJSON_Delete(o);
        api_error(rs, 503, E_UNAVAIL, "audit row not written");
        goto fail;
    }
    cJSON_Delete(o);
    if(publish_cmd(ctx, rs, topic, payload, &trk))
        goto fail;
    if(api_commit(ctx, rs)) {
        cid = 0; /* sent: its answer or expiry still closes the row */
        goto out;
    }
    cmd_track(ctx, cid, 1, &trk);
    sent_id = cid;
    cid = 0;
    if(!strcmp(kind, "debug") && online) {
        redisReply *x;
        remaining = (long)cJSON_GetObjectItem(payload, "duration")->valuedouble;
        r = api_redis(ctx);
        x = r ? redisCommand(r, "SETEX debug:%s %ld 1", sn, remaining) : NULL;
        if(r && !x)
            api_redis_fail(ctx);
        freeReplyObject(x);
    } else {
        remaining = debug_remaining(ctx, sn);
    }
    if(after)
        uncache(ctx, sn);
    command_sent(rs, online ? 200 : 202, topic, payload, remaining, sent_id);
    payload = NULL;
    goto out;
fail:
    api_rollback(ctx);
out:
    cmd_track(ctx, cid, 0, &trk); /* recorded but never sent */
    cJSON_Delete(before);
    cJSON_Delete(after);
    cJSON_Delete(payload);
    return 0;
}

/* A device's commands, newest first (§10.2 list): each with its state and,
 * once the device answered, its result ("ok", "rejected", "done",
 * "failed") and reason. Broadcasts appear once the device answered them. */
int h_dev_commands(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *sn = rq->params[0];
    const char *v[1] = {sn};
    char err[128];
    struct api_page pg;
    cJSON *o;

    if(!rq_sn_valid(sn))
        return bad_sn(rs, sn);
    if(rq_page(rq, 200, 20, &pg, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(dev_exists(ctx, rs, sn) != 1)
        return 0;
    o = api_list(ctx, rs, "SELECT count(*) FROM device_commands WHERE sn = $1",
                 "SELECT cmd_id AS id, cmd, payload::text AS payload, state, sent_by, "
                 ISO("sent_at") " AS sent_at, " ISO("delivered_at") " AS delivered_at, "
                 ISO("result_at") " AS result_at, " ISO("due_at") " AS due_at, "
                 "result, reason FROM device_commands WHERE sn = $1 "
                 "ORDER BY sent_at DESC, id DESC",
                 1, v, &pg);
    if(!o)
        return 0;
    /* The payload as the object it is, not as text. */
    for(cJSON *it = cJSON_GetObjectItem(o, "data") ? cJSON_GetObjectItem(o, "data")->child : NULL;
        it; it = it->next) {
        cJSON *p = cJSON_GetObjectItem(it, "payload");
        cJSON *j = p && cJSON_IsString(p) ? cJSON_Parse(p->valuestring) : NULL;
        if(j)
            cJSON_ReplaceItemInObject(it, "payload", j);
    }
    return api_json(rs, 200, o);
}

int h_dev_broadcast(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *kind = "";
    char topic[128];
    cJSON *payload = NULL, *o;
    long long cid;
    struct mq_track trk = {0, 0};

    if(checked_body(rq, rs, NULL, 0, &payload, &kind))
        return 0;
    if(!strcmp(kind, "calib")) {
        cJSON_Delete(payload);
        return api_error(rs, 400, E_CALIB, "calibration is per device, not broadcast");
    }
    if(!mq_connected(ctx->mq)) {
        cJSON_Delete(payload);
        return api_error(rs, 503, E_UNAVAIL, "broker unavailable");
    }
    snprintf(topic, sizeof(topic), "%s/broadcast/cmd", ctx->cfg.mqtt_prefix);
    cid = cmd_record(ctx, rq, rs, NULL, kind, payload, 1);
    if(!cid) {
        cJSON_Delete(payload);
        return 0;
    }
    o = command_record(topic, payload);
    if(audit_log(ctx, rq, "device.broadcast", "broadcast", NULL, o)) {
        cJSON_Delete(o);
        cJSON_Delete(payload);
        cmd_track(ctx, cid, 0, &trk);
        return api_error(rs, 503, E_UNAVAIL, "audit row not written");
    }
    cJSON_Delete(o);
    if(publish_cmd(ctx, rs, topic, payload, &trk)) {
        cJSON_Delete(payload);
        cmd_track(ctx, cid, 0, &trk);
        return 0;
    }
    cmd_track(ctx, cid, 1, &trk);
    return command_sent(rs, 200, topic, payload, 0, cid);
}

/* Appends a Postgres array element; numbers as %.17g, NULL for null. */
static int arr_add(char **buf, size_t *n, size_t *cap, const char *s)
{
    size_t l = strlen(s);
    if(*n + l + 2 > *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        char *nb;
        while(nc < *n + l + 2)
            nc *= 2;
        nb = realloc(*buf, nc);
        if(!nb)
            return MCS_ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    if(*n > 1)
        (*buf)[(*n)++] = ',';
    memcpy(*buf + *n, s, l);
    *n += l;
    (*buf)[*n] = '\0';
    return 0;
}

/* arr_add of s0, s1, s2 to the arrays of sn, pos_x and pos_y in turn. */
static int arr_add3(char *arr[3], size_t an[3], size_t ac[3], const char *s0, const char *s1,
                    const char *s2)
{
    const char *s[3] = {s0, s1, s2};
    for(int k = 0; k < 3; k++)
        if(arr_add(&arr[k], &an[k], &ac[k], s[k]))
            return MCS_ENOMEM;
    return 0;
}

int h_dev_positions(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok_top[] = {"positions", NULL};
    static const char *const ok_item[] = {"sn", "pos_x", "pos_y", NULL};
    char err[160];
    cJSON *j = rq_json_object(rq->body, rq->body_len, err, sizeof(err)), *list, *it, *o;
    char *arr[3] = {NULL, NULL, NULL};
    size_t an[3] = {0, 0, 0}, ac[3] = {0, 0, 0};
    int count = 0;
    PGresult *r = NULL;

    if(!j)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    list = cJSON_GetObjectItemCaseSensitive(j, "positions");
    if(rq_known_fields(j, ok_top, err, sizeof(err)) || !cJSON_IsArray(list)) {
        api_error(rs, 400, E_BAD_REQ, "body must be {\"positions\":[{sn,pos_x,pos_y},...]}");
        goto out;
    }
    if(arr_add3(arr, an, ac, "{", "{", "{")) {
        api_error(rs, 500, E_INTERNAL, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *sn = cJSON_GetObjectItemCaseSensitive(it, "sn");
        const cJSON *xy[2] = {cJSON_GetObjectItemCaseSensitive(it, "pos_x"),
                              cJSON_GetObjectItemCaseSensitive(it, "pos_y")};
        char num[2][40];
        if(++count > 10000) {
            api_error(rs, 400, E_BAD_REQ, "at most 10000 positions");
            goto out;
        }
        if(!cJSON_IsObject(it) || rq_known_fields(it, ok_item, err, sizeof(err)) ||
           !cJSON_IsString(sn) || !rq_sn_valid(sn->valuestring)) {
            api_error(rs, 400, E_BAD_REQ, "position %d: needs a valid sn, pos_x, pos_y", count);
            goto out;
        }
        for(int k = 0; k < 2; k++) {
            if(cJSON_IsNull(xy[k])) {
                snprintf(num[k], sizeof(num[k]), "NULL");
            } else if(cJSON_IsNumber(xy[k]) && isfinite(xy[k]->valuedouble) &&
                      xy[k]->valuedouble >= 0 && xy[k]->valuedouble <= 100) {
                snprintf(num[k], sizeof(num[k]), "%.17g", xy[k]->valuedouble);
            } else {
                api_error(rs, 400, E_BAD_REQ, "position %d: pos_x/pos_y must be 0..100 or null",
                          count);
                goto out;
            }
        }
        char quoted[40];
        snprintf(quoted, sizeof(quoted), "\"%s\"", sn->valuestring);
        if(arr_add3(arr, an, ac, quoted, num[0], num[1])) {
            api_error(rs, 500, E_INTERNAL, "out of memory");
            goto out;
        }
    }
    if(arr_add3(arr, an, ac, "}", "}", "}")) {
        api_error(rs, 500, E_INTERNAL, "out of memory");
        goto out;
    }
    /* arr_add put a comma before the closing brace: take it out. */
    for(int k = 0; k < 3; k++)
        if(an[k] >= 2 && arr[k][an[k] - 2] == ',') {
            arr[k][an[k] - 2] = '}';
            arr[k][an[k] - 1] = '\0';
        }
    if(api_begin(ctx, rs))
        goto out;
    {
        const char *v[3] = {arr[0], arr[1], arr[2]};
        r = api_query(ctx, rs,
                      "SELECT v.sn FROM unnest($1::text[], $2::float8[], $3::float8[]) "
                      "v(sn, x, y) LEFT JOIN devices d ON d.sn = v.sn WHERE d.sn IS NULL LIMIT 1",
                      3, v);
        if(!r)
            goto fail;
        if(PQntuples(r)) {
            api_error(rs, 404, E_DEV_NOTFOUND, "SN: %s", PQgetvalue(r, 0, 0));
            goto fail;
        }
        PQclear(r);
        r = api_query(ctx, rs,
                      "UPDATE devices d SET pos_x = v.x, pos_y = v.y, updated_at = now() FROM "
                      "unnest($1::text[], $2::float8[], $3::float8[]) v(sn, x, y) "
                      "WHERE d.sn = v.sn",
                      3, v);
        if(!r || api_notify_config(ctx, rs, "devices"))
            goto fail;
    }
    if(audit_commit(ctx, rq, rs, "device.positions", "", NULL, j))
        goto out;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "位置已保存");
    cJSON_AddNumberToObject(o, "updated", atof(PQcmdTuples(r)));
    api_json(rs, 200, o);
    goto out;
fail:
    api_rollback(ctx);
out:
    PQclear(r);
    for(int k = 0; k < 3; k++)
        free(arr[k]);
    cJSON_Delete(j);
    return 0;
}

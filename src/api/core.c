/* core.c - the loop thread's PostgreSQL and Redis connections and the
 * response helpers every handler uses (see api.h).
 * Owns ctx->pg and ctx->rds. Thread: the lws loop thread only. */
#include "api.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *api_code_message(int code)
{
    switch(code) {
#define API_CODE_CASE(name, value, msg) \
    case value:                         \
        return msg;
        API_CODES(API_CODE_CASE)
#undef API_CODE_CASE
    }
    return "";
}

PGconn *api_pg(struct api_ctx *ctx)
{
    char err[256];
    int64_t now = mcs_mono_ms();

    if(ctx->pg && PQstatus(ctx->pg) == CONNECTION_OK)
        return ctx->pg;
    if(ctx->pg) {
        PQfinish(ctx->pg);
        ctx->pg = NULL;
    }
    if(now < ctx->pg_retry_ms)
        return NULL;
    ctx->pg_retry_ms = now + 1000;
    ctx->pg = mcs_pg_connect(&ctx->cfg, "mcs-api", err, sizeof(err));
    if(!ctx->pg) {
        LOG_W("api", "database unreachable", LS("error", err));
        return NULL;
    }
    /* A slow query must not hold the loop for long: every request is bounded. */
    if(mcs_pg_exec(ctx->pg, "SET statement_timeout = '5s'", err, sizeof(err)))
        LOG_W("api", "cannot set statement_timeout", LS("error", err));
    ctx->nstmts = 0; /* a new session has no prepared statements */
    LOG_I("api", "database connected");
    return ctx->pg;
}

void api_pg_check(struct api_ctx *ctx)
{
    if(ctx->pg && PQstatus(ctx->pg) != CONNECTION_OK) {
        PQfinish(ctx->pg);
        ctx->pg = NULL;
    }
}

redisContext *api_redis(struct api_ctx *ctx)
{
    char err[256];
    int64_t now = mcs_mono_ms();
    struct timeval tv = {0, 500000};

    if(ctx->rds && !ctx->rds->err)
        return ctx->rds;
    if(ctx->rds) {
        redisFree(ctx->rds);
        ctx->rds = NULL;
    }
    if(now < ctx->rds_retry_ms)
        return NULL;
    ctx->rds_retry_ms = now + 1000;
    ctx->rds = mcs_redis_connect(&ctx->cfg, err, sizeof(err));
    if(!ctx->rds) {
        LOG_W("api", "redis unreachable", LS("error", err));
        return NULL;
    }
    redisSetTimeout(ctx->rds, tv);
    return ctx->rds;
}

void api_redis_fail(struct api_ctx *ctx)
{
    if(ctx->rds) {
        LOG_W("api", "redis error", LS("error", ctx->rds->errstr));
        redisFree(ctx->rds);
        ctx->rds = NULL;
    }
}

PGresult *api_query(struct api_ctx *ctx, struct api_resp *rs, const char *sql, int n,
                    const char *const *vals)
{
    PGconn *pg = api_pg(ctx);
    PGresult *r;
    ExecStatusType st;

    if(!pg) {
        api_error(rs, 503, E_UNAVAIL, "database unavailable");
        return NULL;
    }
    r = NULL;
    {
        /* FNV-1a of the text names the prepared statement. */
        uint64_t h = 1469598103934665603ULL;
        char name[24];
        int i;
        for(const char *c = sql; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        snprintf(name, sizeof(name), "s%016llx", (unsigned long long)h);
        for(i = 0; i < ctx->nstmts && ctx->stmts[i] != h; i++) {
        }
        if(i == ctx->nstmts && ctx->nstmts < (int)(sizeof(ctx->stmts) / sizeof(ctx->stmts[0]))) {
            PGresult *p = PQprepare(pg, name, sql, n, NULL);
            if(PQresultStatus(p) == PGRES_COMMAND_OK)
                ctx->stmts[ctx->nstmts++] = h;
            PQclear(p);
        }
        if(i < ctx->nstmts)
            r = PQexecPrepared(pg, name, n, vals, NULL, NULL, 0);
        else
            r = PQexecParams(pg, sql, n, NULL, vals, NULL, NULL, 0);
    }
    st = PQresultStatus(r);
    if(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        LOG_W("api", "query failed", LS("sqlstate", state ? state : ""),
              LS("error", PQerrorMessage(pg)));
        if(PQstatus(pg) != CONNECTION_OK)
            api_error(rs, 503, E_UNAVAIL, "database unavailable");
        else if(state && !strcmp(state, "57014"))
            api_error(rs, 503, E_UNAVAIL, "query timed out");
        else
            api_error(rs, 500, E_INTERNAL, "database error %s", state ? state : "");
    }
    PQclear(r);
    api_pg_check(ctx);
    return NULL;
}

int api_notify_config(struct api_ctx *ctx, struct api_resp *rs, const char *what)
{
    const char *v[1] = {what};
    PGresult *r = api_query(ctx, rs, "SELECT pg_notify('mcs_config', $1)", 1, v);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

int api_begin(struct api_ctx *ctx, struct api_resp *rs)
{
    PGresult *r = api_query(ctx, rs, "BEGIN", 0, NULL);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

void api_rollback(struct api_ctx *ctx)
{
    if(ctx->pg)
        PQclear(PQexec(ctx->pg, "ROLLBACK"));
}

int api_commit(struct api_ctx *ctx, struct api_resp *rs)
{
    PGresult *r = api_query(ctx, rs, "COMMIT", 0, NULL);
    if(!r) {
        api_rollback(ctx);
        return MCS_EDB;
    }
    PQclear(r);
    return 0;
}

static void set_body(struct api_resp *rs, int status, const char *ctype, char *buf, size_t len)
{
    free(rs->body);
    rs->status = status;
    rs->ctype = ctype;
    rs->body = buf;
    rs->len = len;
}

int api_json(struct api_resp *rs, int status, cJSON *body)
{
    char *s = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if(!s) {
        const char *oom = "{\"code\":90006,\"message\":\"out of memory\",\"detail\":\"\"}";
        s = strdup(oom);
        status = 500;
        if(!s) {
            set_body(rs, 500, "application/json", NULL, 0);
            return 0;
        }
    }
    set_body(rs, status, "application/json", s, strlen(s));
    return 0;
}

int api_error(struct api_resp *rs, int status, int code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    cJSON *j = cJSON_CreateObject();

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    cJSON_AddNumberToObject(j, "code", code);
    cJSON_AddStringToObject(j, "message", api_code_message(code));
    cJSON_AddStringToObject(j, "detail", detail);
    rs->code = code;
    return api_json(rs, status, j);
}

void api_header(struct api_resp *rs, const char *name, const char *fmt, ...)
{
    va_list ap;
    if(rs->nh >= 3)
        return;
    snprintf(rs->hname[rs->nh], sizeof(rs->hname[0]), "%s", name);
    va_start(ap, fmt);
    vsnprintf(rs->hval[rs->nh], sizeof(rs->hval[0]), fmt, ap);
    va_end(ap);
    rs->nh++;
}

int api_saved(struct api_resp *rs, const char *message)
{
    char ts[40];
    cJSON *j = cJSON_CreateObject();
    int64_t us = mcs_now_us();
    /* Whole seconds, as the manual's example shows. */
    mcs_time_iso8601(us - us % 1000000, ts, sizeof(ts));
    {
        char *dot = strchr(ts, '.');
        if(dot) {
            dot[0] = 'Z';
            dot[1] = '\0';
        }
    }
    cJSON_AddStringToObject(j, "message", message);
    cJSON_AddStringToObject(j, "updated_at", ts);
    return api_json(rs, 200, j);
}

int api_raw(struct api_resp *rs, int status, const char *ctype, char *buf, size_t len)
{
    set_body(rs, status, ctype, buf, len);
    return 0;
}

cJSON *api_pg_num(PGresult *r, int row, int col)
{
    if(PQgetisnull(r, row, col))
        return cJSON_CreateNull();
    return cJSON_CreateNumber(strtod(PQgetvalue(r, row, col), NULL));
}

cJSON *api_pg_str(PGresult *r, int row, int col)
{
    if(PQgetisnull(r, row, col))
        return cJSON_CreateNull();
    return cJSON_CreateString(PQgetvalue(r, row, col));
}

cJSON *api_pg_bool(PGresult *r, int row, int col)
{
    if(PQgetisnull(r, row, col))
        return cJSON_CreateNull();
    return cJSON_CreateBool(PQgetvalue(r, row, col)[0] == 't');
}

/* Type OIDs of pg_type.h that are shown as numbers, booleans or JSON. */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_NUMERIC = 1700, OID_JSON = 114, OID_JSONB = 3802 };

cJSON *api_pg_row(PGresult *r, int row)
{
    cJSON *o = cJSON_CreateObject();
    for(int c = 0; c < PQnfields(r); c++) {
        cJSON *v;
        switch(PQftype(r, c)) {
        case OID_BOOL:
            v = api_pg_bool(r, row, c);
            break;
        case OID_INT8:
        case OID_INT2:
        case OID_INT4:
        case OID_FLOAT4:
        case OID_FLOAT8:
        case OID_NUMERIC:
            v = api_pg_num(r, row, c);
            break;
        case OID_JSON:
        case OID_JSONB:
            v = PQgetisnull(r, row, c) ? cJSON_CreateNull()
                                       : cJSON_Parse(PQgetvalue(r, row, c));
            if(!v)
                v = cJSON_CreateNull();
            break;
        default:
            v = api_pg_str(r, row, c);
        }
        cJSON_AddItemToObject(o, PQfname(r, c), v);
    }
    return o;
}

void api_page_fields(cJSON *o, long long total, const struct api_page *pg)
{
    cJSON_AddNumberToObject(o, "total", (double)total);
    cJSON_AddNumberToObject(o, "page", (double)pg->page);
    cJSON_AddNumberToObject(o, "size", (double)pg->size);
}

cJSON *api_list(struct api_ctx *ctx, struct api_resp *rs, const char *count_sql,
                const char *rows_sql, int n, const char *const *vals,
                const struct api_page *pg)
{
    /* The longest list query (devices with their alarm and last reading)
     * is about 1.5 KB; twice the largest caller buffer is plenty. */
    char sql[8192];
    const char *v[API_LIST_MAX_VALS + 2];
    PGresult *r;
    cJSON *o = NULL, *data;
    long long total;
    int k;

    assert(n >= 0 && n <= API_LIST_MAX_VALS);
    k = snprintf(sql, sizeof(sql), "%s LIMIT $%d OFFSET $%d", rows_sql, n + 1, n + 2);
    if(k < 0 || (size_t)k >= sizeof(sql)) {
        api_error(rs, 500, E_INTERNAL, "list query too long");
        return NULL;
    }
    r = api_query(ctx, rs, count_sql, n, vals);
    if(!r)
        return NULL;
    total = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    for(int i = 0; i < n; i++)
        v[i] = vals[i];
    v[n] = pg->lim;
    v[n + 1] = pg->off;
    r = api_query(ctx, rs, sql, n + 2, v);
    if(!r)
        return NULL;
    o = cJSON_CreateObject();
    api_page_fields(o, total, pg);
    data = cJSON_AddArrayToObject(o, "data");
    for(int i = 0; i < PQntuples(r); i++)
        cJSON_AddItemToArray(data, api_pg_row(r, i));
    PQclear(r);
    return o;
}

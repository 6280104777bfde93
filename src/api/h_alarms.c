/* h_alarms.c - alarm records (R-API-2, R-AL-3): list with filters, detail,
 * acknowledge with a note (mcs_alarm_ack of migration 010, whose trigger
 * tells every screen), statistics and an .xlsx export (libxlsxwriter).
 * Owns nothing. Thread: the lws loop thread. */
#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "jobs.h"
#include "log.h"
#include "notify_text.h"
#include "reqparse.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xlsxwriter.h>

#define ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define EXPORT_MAX 100000

static const char ALARM_COLS[] =
    "a.id, a.sn, a.alarm_type AS type, a.level, a.category, a.value, a.threshold, "
    ISO("a.triggered_at") " AS triggered_at, " ISO("a.cleared_at") " AS cleared_at, "
    "a.state, a.count, a.peak_value, a.last_value, a.message, a.notified, a.channels, "
    ISO("a.ack_at") " AS ack_at, a.ack_by, a.ack_note, " ISO("a.last_at") " AS last_at, "
    "COALESCE(d.name, '') AS name, COALESCE(d.location, '') AS location";
static const char ALARM_FROM[] = " FROM alarm_logs a LEFT JOIN devices d ON d.sn = a.sn ";

/* The WHERE clause of the list/export filters, with its parameters. */
struct afilter {
    char where[768];
    const char *v[10]; /* 6 filters, the export's limit and zone */
    char ts[2][24];
    int nv;
};

static int filters(const struct api_req *rq, struct afilter *f, char *err, size_t errn)
{
    const char *sn = rq_arg(rq, "sn"), *type = rq_arg(rq, "type"), *state = rq_arg(rq, "state");
    const char *cat = rq_arg(rq, "category");
    int acked, hs, he;
    long level;
    int64_t start = 0, end = 0;
    size_t o = 0;

    memset(f, 0, sizeof(*f));
    if(rq_bool(rq, "acked", &acked, err, errn) || rq_time(rq, "start", &start, &hs, err, errn) ||
       rq_time(rq, "end", &end, &he, err, errn) ||
       rq_int(rq, "level", 0, 2, 0, &level, err, errn))
        return MCS_EINVAL;
    if(hs && he && end <= start) {
        snprintf(err, errn, "end must be after start");
        return MCS_EINVAL;
    }
#define ADD(...) o += (size_t)snprintf(f->where + o, sizeof(f->where) - o, __VA_ARGS__)
    ADD("WHERE true");
    if(sn) {
        if(!rq_sn_valid(sn)) {
            snprintf(err, errn, "sn must match ^[A-Za-z0-9_-]{1,32}$");
            return MCS_EINVAL;
        }
        f->v[f->nv++] = sn;
        ADD(" AND a.sn = $%d", f->nv);
    }
    if(type) {
        if(strlen(type) > 24 || strspn(type, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(type)) {
            snprintf(err, errn, "type must be an alarm type such as HIGH");
            return MCS_EINVAL;
        }
        f->v[f->nv++] = type;
        ADD(" AND a.alarm_type = $%d", f->nv);
    }
    if(cat) {
        if(strcmp(cat, "gas") && strcmp(cat, "fault") && strcmp(cat, "system")) {
            snprintf(err, errn, "category must be gas, fault or system");
            return MCS_EINVAL;
        }
        f->v[f->nv++] = cat;
        ADD(" AND a.category = $%d", f->nv);
    }
    if(state) {
        if(!strcmp(state, "active"))
            ADD(" AND a.cleared_at IS NULL");
        else if(!strcmp(state, "cleared"))
            ADD(" AND a.cleared_at IS NOT NULL");
        else if(!strcmp(state, "active_unack") || !strcmp(state, "active_ack") ||
                !strcmp(state, "cleared_unack") || !strcmp(state, "cleared_ack")) {
            f->v[f->nv++] = state;
            ADD(" AND a.state = $%d", f->nv);
        } else {
            snprintf(err, errn, "state must be active, cleared, active_unack, active_ack, "
                                "cleared_unack or cleared_ack");
            return MCS_EINVAL;
        }
    }
    if(acked >= 0)
        ADD(acked ? " AND a.ack_at IS NOT NULL" : " AND a.ack_at IS NULL");
    if(level)
        ADD(" AND a.level = %ld", level);
    if(hs) {
        snprintf(f->ts[0], sizeof(f->ts[0]), "%lld", (long long)start);
        f->v[f->nv++] = f->ts[0];
        ADD(" AND a.triggered_at >= to_timestamp($%d)", f->nv);
    }
    if(he) {
        snprintf(f->ts[1], sizeof(f->ts[1]), "%lld", (long long)end);
        f->v[f->nv++] = f->ts[1];
        ADD(" AND a.triggered_at < to_timestamp($%d)", f->nv);
    }
#undef ADD
    return 0;
}

int h_alarm_list(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[160], count[1024], sql[2048];
    struct afilter f;
    struct api_page pg;
    cJSON *o;

    if(filters(rq, &f, err, sizeof(err)) || rq_page(rq, 200, 20, &pg, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    snprintf(count, sizeof(count), "SELECT count(*) FROM alarm_logs a %s", f.where);
    snprintf(sql, sizeof(sql), "SELECT %s%s%s ORDER BY a.triggered_at DESC, a.id DESC",
             ALARM_COLS, ALARM_FROM, f.where);
    o = api_list(ctx, rs, count, sql, f.nv, f.v, &pg);
    return o ? api_json(rs, 200, o) : 0;
}

static int alarm_id(struct api_req *rq, struct api_resp *rs, char *out, size_t n)
{
    long long id;
    char *end;
    const char *s = rq->params[0];
    if(!*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s) ||
       (id = strtoll(s, &end, 10)) < 1) {
        api_error(rs, 400, E_BAD_REQ, "alarm id must be a positive integer");
        return -1;
    }
    snprintf(out, n, "%lld", id);
    return 0;
}

static cJSON *alarm_fetch(struct api_ctx *ctx, struct api_resp *rs, const char *id)
{
    char sql[1536];
    const char *v[1] = {id};
    PGresult *r;
    cJSON *o;
    snprintf(sql, sizeof(sql), "SELECT %s%sWHERE a.id = $1", ALARM_COLS, ALARM_FROM);
    r = api_query(ctx, rs, sql, 1, v);
    if(!r)
        return NULL;
    if(PQntuples(r) != 1) {
        PQclear(r);
        api_error(rs, 404, E_NOTFOUND, "no alarm %s", id);
        return NULL;
    }
    o = api_pg_row(r, 0);
    PQclear(r);
    return o;
}

int h_alarm_get(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char id[24];
    cJSON *o;
    if(alarm_id(rq, rs, id, sizeof(id)))
        return 0;
    o = alarm_fetch(ctx, rs, id);
    return o ? api_json(rs, 200, o) : 0;
}

int h_alarm_ack(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"note", NULL};
    char id[24], err[160];
    cJSON *j = NULL, *before, *after;
    const cJSON *note = NULL;
    const char *v[3];
    PGresult *r;

    if(alarm_id(rq, rs, id, sizeof(id)))
        return 0;
    if(rq->body_len) {
        j = rq_json_object(rq->body, rq->body_len, err, sizeof(err));
        if(!j)
            return api_error(rs, 400, E_BAD_REQ, "%s", err);
        note = cJSON_GetObjectItemCaseSensitive(j, "note");
        if(rq_known_fields(j, ok, err, sizeof(err)) ||
           (note && !cJSON_IsNull(note) &&
            (!cJSON_IsString(note) || strlen(note->valuestring) > 1500))) {
            cJSON_Delete(j);
            return api_error(rs, 400, E_BAD_REQ, "body may hold only note (a string)");
        }
    }
    before = alarm_fetch(ctx, rs, id);
    if(!before) {
        cJSON_Delete(j);
        return 0;
    }
    v[0] = id;
    v[1] = rq->user;
    v[2] = cJSON_IsString(note) ? note->valuestring : NULL;
    r = api_query(ctx, rs, "SELECT id FROM mcs_alarm_ack($1, $2, $3)", 3, v);
    cJSON_Delete(j);
    if(!r) {
        cJSON_Delete(before);
        return 0;
    }
    PQclear(r);
    after = alarm_fetch(ctx, rs, id);
    if(!after) {
        cJSON_Delete(before);
        return 0;
    }
    audit_log(ctx, rq, "alarm.ack", id, before, after);
    cJSON_Delete(before);
    return api_json(rs, 200, after);
}

/* Appends one {label: ..., "count": n} object to arr per row of sql, a
 * (label, count) query over the parameters v (the window's start and end).
 * 0, or MCS_EDB with rs set. */
static int add_counts(struct api_ctx *ctx, struct api_resp *rs, cJSON *arr, const char *label,
                      const char *sql, const char *const *v)
{
    PGresult *r = api_query(ctx, rs, sql, 2, v);
    if(!r)
        return MCS_EDB;
    for(int i = 0; i < PQntuples(r); i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToObject(d, label, api_pg_str(r, i, 0));
        cJSON_AddItemToObject(d, "count", api_pg_num(r, i, 1));
        cJSON_AddItemToArray(arr, d);
    }
    PQclear(r);
    return 0;
}

int h_alarm_stats(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[160], a[24], b[24];
    int64_t start = 0, end = 0;
    int hs, he;
    const char *v[2] = {a, b};
    PGresult *r;
    cJSON *o, *bt;

    if(rq_time(rq, "start", &start, &hs, err, sizeof(err)) ||
       rq_time(rq, "end", &end, &he, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(!he)
        end = mcs_now_ms() / 1000 + 1;
    if(!hs)
        start = end - 7 * 86400;
    if(end <= start)
        return api_error(rs, 400, E_BAD_REQ, "end must be after start");
    if(end - start > 366LL * 86400)
        return api_error(rs, 400, E_BAD_REQ, "at most 366 days");
    snprintf(a, sizeof(a), "%lld", (long long)start);
    snprintf(b, sizeof(b), "%lld", (long long)end);
    r = api_query(ctx, rs,
                  "SELECT " ISO("to_timestamp($1)") ", " ISO("to_timestamp($2)") ", "
                  "(SELECT count(*) FROM alarm_logs WHERE triggered_at >= to_timestamp($1) AND "
                  "triggered_at < to_timestamp($2)), "
                  "(SELECT count(*) FROM alarm_logs WHERE cleared_at IS NULL), "
                  "(SELECT count(*) FROM alarm_logs WHERE ack_at IS NULL), "
                  "(SELECT count(*) FROM alarm_logs WHERE triggered_at >= date_trunc('day', now()))",
                  2, v);
    if(!r)
        return 0;
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "start", api_pg_str(r, 0, 0));
    cJSON_AddItemToObject(o, "end", api_pg_str(r, 0, 1));
    cJSON_AddItemToObject(o, "total", api_pg_num(r, 0, 2));
    cJSON_AddItemToObject(o, "active", api_pg_num(r, 0, 3));
    cJSON_AddItemToObject(o, "unacked", api_pg_num(r, 0, 4));
    cJSON_AddItemToObject(o, "today", api_pg_num(r, 0, 5));
    PQclear(r);
    bt = cJSON_AddObjectToObject(o, "by_type");
    r = api_query(ctx, rs,
                  "SELECT alarm_type, count(*) FROM alarm_logs WHERE triggered_at >= "
                  "to_timestamp($1) AND triggered_at < to_timestamp($2) GROUP BY 1 ORDER BY 1",
                  2, v);
    if(!r)
        goto fail;
    for(int i = 0; i < PQntuples(r); i++)
        cJSON_AddItemToObject(bt, PQgetvalue(r, i, 0), api_pg_num(r, i, 1));
    PQclear(r);
    if(add_counts(ctx, rs, cJSON_AddArrayToObject(o, "by_day"), "date",
                  "SELECT to_char(date_trunc('day', triggered_at AT TIME ZONE 'UTC'), "
                  "'YYYY-MM-DD'), count(*) FROM alarm_logs WHERE triggered_at >= "
                  "to_timestamp($1) AND triggered_at < to_timestamp($2) GROUP BY 1 ORDER BY 1",
                  v) ||
       add_counts(ctx, rs, cJSON_AddArrayToObject(o, "top_devices"), "sn",
                  "SELECT sn, count(*) FROM alarm_logs WHERE triggered_at >= to_timestamp($1) "
                  "AND triggered_at < to_timestamp($2) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
                  v))
        goto fail;
    return api_json(rs, 200, o);
fail:
    cJSON_Delete(o);
    return 0;
}

/* The .xlsx export: the query on the loop (its one connection), the
 * workbook on the job worker, since 100,000 rows take libxlsxwriter ~2 s
 * that would hold every other client and the dashboards' alarm frames.
 * People read it: times in the plant's zone (named in the header), types
 * and states in Chinese with an English column beside (issue #19). */
struct export_job {
    PGresult *r;
    FILE *f;
    long len;
    char tz[64];
    char err[96];
};

/* Local time text of column c in the zone of parameter $p. */
#define LOCAL(c, p) "to_char(" c " AT TIME ZONE " p ", 'YYYY-MM-DD HH24:MI:SS')"
#define EXPORT_SQL(tzp)                                                                   \
    "a.id, a.sn, a.alarm_type AS type, a.level, a.value, a.threshold, "                   \
    LOCAL("a.triggered_at", tzp) " AS triggered_at, " LOCAL("a.cleared_at", tzp)          \
    " AS cleared_at, a.state, a.count, a.peak_value, " LOCAL("a.ack_at", tzp) " AS ack_at, " \
    "a.ack_by, a.ack_note, a.channels, COALESCE(d.name, '') AS name, "                    \
    "COALESCE(d.location, '') AS location"

/* Column heads (Chinese, English). What a cell holds: the value as it is, a
 * local time (the zone follows the head), the Chinese or English word of a
 * type or state. */
enum export_kind { EX_VAL, EX_TIME, EX_ZH_TYPE, EX_EN_TYPE, EX_ZH_STATE, EX_EN_STATE };
static const struct {
    const char *head, *col;
    enum export_kind kind;
} export_cols[] = {
    {"ID", "id", EX_VAL},
    {"SN", "sn", EX_VAL},
    {"设备名称 Device", "name", EX_VAL},
    {"位置 Location", "location", EX_VAL},
    {"类型", "type", EX_ZH_TYPE},
    {"Type", "type", EX_EN_TYPE},
    {"级别 Level", "level", EX_VAL},
    {"值 Value", "value", EX_VAL},
    {"阈值 Threshold", "threshold", EX_VAL},
    {"触发时间 Triggered", "triggered_at", EX_TIME},
    {"解除时间 Cleared", "cleared_at", EX_TIME},
    {"状态", "state", EX_ZH_STATE},
    {"State", "state", EX_EN_STATE},
    {"次数 Count", "count", EX_VAL},
    {"峰值 Peak", "peak_value", EX_VAL},
    {"确认时间 Acknowledged", "ack_at", EX_TIME},
    {"确认人 By", "ack_by", EX_VAL},
    {"备注 Note", "ack_note", EX_VAL},
    {"通知渠道 Channels", "channels", EX_VAL},
};
#define EXPORT_NCOLS ((int)(sizeof(export_cols) / sizeof(export_cols[0])))

/* Worker: writes e->r as a workbook (constant memory: row by row to a
 * temporary file) and opens it for reading in e->f, or sets e->err. */
static void export_work(struct api_job *j)
{
    struct export_job *e = j->data;
    char path[] = "/tmp/mcs-api-export-XXXXXX";
    lxw_workbook_options opt = {.constant_memory = LXW_TRUE, .tmpdir = "/tmp"};
    lxw_workbook *wb = NULL;
    lxw_worksheet *ws;
    lxw_format *bold;
    int fd = mkstemp(path), fcol[EXPORT_NCOLS];

    if(fd < 0) {
        snprintf(e->err, sizeof(e->err), "cannot create a temporary file");
        return;
    }
    close(fd);
    wb = workbook_new_opt(path, &opt);
    ws = wb ? workbook_add_worksheet(wb, "alarms") : NULL;
    if(!ws) {
        if(wb)
            workbook_close(wb);
        snprintf(e->err, sizeof(e->err), "cannot create the workbook");
        goto out;
    }
    bold = workbook_add_format(wb);
    format_set_bold(bold);
    /* Panes before the rows: constant-memory mode writes as it goes. */
    worksheet_freeze_panes(ws, 1, 0);
    for(int c = 0; c < EXPORT_NCOLS; c++) {
        char head[128];
        if(export_cols[c].kind == EX_TIME)
            snprintf(head, sizeof(head), "%s (%s)", export_cols[c].head, e->tz);
        else
            snprintf(head, sizeof(head), "%s", export_cols[c].head);
        worksheet_write_string(ws, 0, (lxw_col_t)c, head, bold);
        fcol[c] = PQfnumber(e->r, export_cols[c].col);
    }
    for(int i = 0; i < PQntuples(e->r); i++) {
        for(int c = 0; c < EXPORT_NCOLS; c++) {
            int fc = fcol[c];
            const char *val;
            Oid t;
            if(fc < 0 || PQgetisnull(e->r, i, fc))
                continue;
            val = PQgetvalue(e->r, i, fc);
            t = PQftype(e->r, fc);
            switch(export_cols[c].kind) {
            case EX_ZH_TYPE: val = notify_type_zh(val); break;
            case EX_EN_TYPE: val = notify_type_en(val); break;
            case EX_ZH_STATE: val = notify_state_zh(val); break;
            case EX_EN_STATE: val = notify_state_en(val); break;
            case EX_VAL:
            case EX_TIME: break;
            }
            if(t == 20 || t == 21 || t == 23 || t == 700 || t == 701 || t == 1700)
                worksheet_write_number(ws, (lxw_row_t)(i + 1), (lxw_col_t)c,
                                       strtod(val, NULL), NULL);
            else
                worksheet_write_string(ws, (lxw_row_t)(i + 1), (lxw_col_t)c, val, NULL);
        }
    }
    PQclear(e->r);
    e->r = NULL;
    if(workbook_close(wb) != LXW_NO_ERROR) {
        snprintf(e->err, sizeof(e->err), "cannot write the workbook");
        goto out;
    }
    e->f = fopen(path, "rb");
    if(!e->f || fseek(e->f, 0, SEEK_END) || (e->len = ftell(e->f)) < 0 ||
       fseek(e->f, 0, SEEK_SET)) {
        if(e->f)
            fclose(e->f);
        e->f = NULL;
        snprintf(e->err, sizeof(e->err), "cannot read the workbook");
    }
out:
    unlink(path); /* an open file stays readable */
}

static void export_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    struct export_job *e = j->data;
    (void)ctx;

    if(!e->f) {
        api_error(rs, 500, E_INTERNAL, "%s", e->err);
        return;
    }
    rs->status = 200;
    rs->ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    rs->file = e->f; /* http.c closes it */
    rs->len = (size_t)e->len;
    e->f = NULL;
    api_header(rs, "content-disposition:", "attachment; filename=\"alarms.xlsx\"");
}

static void export_free(void *data)
{
    struct export_job *e = data;
    if(!e)
        return;
    PQclear(e->r);
    if(e->f)
        fclose(e->f);
    free(e);
}

int h_alarm_export(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[160], sql[2048], lim[24], tz[64];
    struct afilter f;
    struct export_job *e;
    PGresult *r;

    if(filters(rq, &f, err, sizeof(err)))
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    r = api_query(ctx, rs, "SELECT " API_PLANT_TZ_SQL, 0, NULL);
    if(!r)
        return 0;
    snprintf(tz, sizeof(tz), "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "Asia/Shanghai");
    PQclear(r);
    snprintf(lim, sizeof(lim), "%d", EXPORT_MAX);
    f.v[f.nv] = lim;
    f.v[f.nv + 1] = tz;
    {
        char tzp[16];
        snprintf(tzp, sizeof(tzp), "$%d", f.nv + 2);
        snprintf(sql, sizeof(sql),
                 "SELECT " EXPORT_SQL("%s") "%s%s ORDER BY a.triggered_at DESC, a.id DESC "
                 "LIMIT $%d",
                 tzp, tzp, tzp, ALARM_FROM, f.where, f.nv + 1);
    }
    r = api_query(ctx, rs, sql, f.nv + 2, f.v);
    if(!r)
        return 0;
    e = calloc(1, sizeof(*e));
    if(!e) {
        PQclear(r);
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    }
    e->r = r;
    snprintf(e->tz, sizeof(e->tz), "%s", tz);
    api_defer_work(rs, export_work, export_done, export_free, e);
    return 0;
}

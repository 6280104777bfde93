/* h_history.c - device history over a range that touches archived days
 * (issue #19): GET /api/devices/{sn}/history reads such a range through
 * history_query(), the path of `mcs history` with its local cache of
 * archived days, on the job worker (jobs.c) with a PostgreSQL connection of
 * its own, so that a download from the bucket never blocks the loop. Rows
 * are bucketed as the hot query does (date_bin from the epoch: avg/min/max
 * ppm, avg temp, count), streaming, and only the requested page is kept.
 * Owns each request's job data. Thread: the handler and done on the lws
 * loop, work on the job worker. */
#include "conn.h"
#include "err.h"
#include "handlers.h"
#include "history.h"
#include "jobs.h"
#include "log.h"
#include "timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hist_job {
    const struct mcs_config *cfg;
    char sn[40], ivs[16];
    int64_t start, end;
    long iv;
    struct api_page pg;
    long long lim, off;
    /* results */
    cJSON *pts;
    long long total;
    struct history_stats st;
    int rc;
    char err[600];
    /* the bucket being summed (iv > 0) */
    int open;
    int64_t bk;
    double sum_ppm, sum_temp, mn, mx;
    long n_ppm, n_temp, cnt;
};

void hist_iso(int64_t s, char *buf, size_t n)
{
    mcs_time_iso8601(s * 1000000, buf, n);
    char *dot = strchr(buf, '.');
    if(dot) {
        dot[0] = 'Z';
        dot[1] = '\0';
    }
}

static cJSON *num_or_null(int have, double v)
{
    return have ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* Adds one point when it falls on the requested page. */
static void point(struct hist_job *h, int64_t ts_s, int have_ppm, double ppm, int have_temp,
                  double temp, int have_mm, double mn, double mx, long cnt)
{
    long long idx = h->total++;
    char ts[40];
    cJSON *p;
    if(idx < h->off || idx >= h->off + h->lim)
        return;
    hist_iso(ts_s, ts, sizeof(ts));
    p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "ts", ts);
    cJSON_AddItemToObject(p, "ppm", num_or_null(have_ppm, ppm));
    cJSON_AddItemToObject(p, "temp", num_or_null(have_temp, temp));
    cJSON_AddItemToObject(p, "ppm_min", num_or_null(have_mm, mn));
    cJSON_AddItemToObject(p, "ppm_max", num_or_null(have_mm, mx));
    cJSON_AddNumberToObject(p, "count", (double)cnt);
    cJSON_AddItemToArray(h->pts, p);
}

static void bucket_close(struct hist_job *h)
{
    if(!h->open)
        return;
    /* round() like PostgreSQL's numeric round: half away from zero. */
    point(h, h->bk, h->n_ppm > 0, round(h->sum_ppm / (double)(h->n_ppm ? h->n_ppm : 1) * 1e3) / 1e3,
          h->n_temp > 0, round(h->sum_temp / (double)(h->n_temp ? h->n_temp : 1) * 1e2) / 1e2,
          h->n_ppm > 0, h->mn, h->mx, h->cnt);
    h->open = 0;
}

/* One field of an archive CSV line (ARCHIVE_CSV_HEADER: time, sn, v_raw,
 * ppm, temp, ...) as a number; 0 when empty. */
static int field(const char *line, size_t len, int col, double *out)
{
    const char *p = line, *end = line + len;
    for(int c = 0; c < col; c++) {
        p = memchr(p, ',', (size_t)(end - p));
        if(!p)
            return 0;
        p++;
    }
    if(p >= end || *p == ',')
        return 0;
    char buf[48], *e;
    size_t n = 0;
    while(p + n < end && p[n] != ',' && n < sizeof(buf) - 1)
        n++;
    memcpy(buf, p, n);
    buf[n] = '\0';
    *out = strtod(buf, &e);
    return e != buf;
}

static int on_row(void *arg, const char *line, size_t len)
{
    struct hist_job *h = arg;
    int64_t us;
    double ppm = 0, temp = 0;
    int hp, ht;
    if(history_row_time(line, len, &us)) {
        snprintf(h->err, sizeof(h->err), "bad time in a history row");
        h->rc = MCS_ECORRUPT;
        return 1;
    }
    hp = field(line, len, 3, &ppm);
    ht = field(line, len, 4, &temp);
    if(h->iv == 0) {
        point(h, us / 1000000, hp, ppm, ht, temp, hp, ppm, ppm, 1);
        return 0;
    }
    int64_t s = us / 1000000 - (us % 1000000 < 0), bk = s - ((s % h->iv) + h->iv) % h->iv;
    if(h->open && bk != h->bk)
        bucket_close(h);
    if(!h->open) {
        h->open = 1;
        h->bk = bk;
        h->sum_ppm = h->sum_temp = 0;
        h->n_ppm = h->n_temp = h->cnt = 0;
    }
    h->cnt++;
    if(hp) {
        if(!h->n_ppm || ppm < h->mn)
            h->mn = ppm;
        if(!h->n_ppm || ppm > h->mx)
            h->mx = ppm;
        h->sum_ppm += ppm;
        h->n_ppm++;
    }
    if(ht) {
        h->sum_temp += temp;
        h->n_temp++;
    }
    return 0;
}

static void hist_work(struct api_job *j)
{
    struct hist_job *h = j->data;
    PGconn *pg = mcs_pg_connect(h->cfg, "mcs-api-history", h->err, sizeof(h->err));
    int rc;
    if(!pg) {
        h->rc = MCS_EDB;
        return;
    }
    rc = history_query(h->cfg, pg, h->sn, h->start, h->end, on_row, h, &h->st, h->err,
                       sizeof(h->err));
    if(!h->rc)
        h->rc = rc;
    if(!h->rc)
        bucket_close(h);
    PQfinish(pg);
}

static void hist_free(void *data)
{
    struct hist_job *h = data;
    if(!h)
        return;
    cJSON_Delete(h->pts);
    free(h);
}

/* Where the range was read: no archived day, only archived days, or both. */
static const char *source(const struct history_stats *st)
{
    if(st->cold_days == 0)
        return "hot";
    return st->hot_days == 0 ? "archive" : "mixed";
}

static void hist_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    struct hist_job *h = j->data;
    char sa[40], sb[40];
    cJSON *o;
    (void)ctx;
    switch(h->rc) {
    case 0:
        break;
    case MCS_EINVAL:
    case MCS_ETOOBIG:
        api_error(rs, 400, E_BAD_REQ, "%s", h->err);
        return;
    case MCS_EDB:
        api_error(rs, 503, E_UNAVAIL, "database: %s", h->err);
        return;
    case MCS_ECONFIG:
        api_error(rs, 503, E_R2, "archive sink: %s", h->err);
        return;
    default:
        LOG_W("api", "archived history unreadable", LS("sn", h->sn), LS("error", h->err));
        api_error(rs, 503, E_UNAVAIL, "archive: %s", h->err);
        return;
    }
    hist_iso(h->start, sa, sizeof(sa));
    hist_iso(h->end, sb, sizeof(sb));
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "sn", h->sn);
    cJSON_AddStringToObject(o, "start", sa);
    cJSON_AddStringToObject(o, "end", sb);
    cJSON_AddStringToObject(o, "interval", h->ivs);
    cJSON_AddStringToObject(o, "source", source(&h->st));
    api_page_fields(o, h->total, &h->pg);
    cJSON_AddItemToObject(o, "points", h->pts);
    h->pts = NULL;
    api_json(rs, 200, o);
}

int h_dev_history_cold(struct api_ctx *ctx, struct api_resp *rs, const char *sn, int64_t start,
                       int64_t end, long iv, const char *ivs, const struct api_page *pg)
{
    struct hist_job *h = calloc(1, sizeof(*h));
    if(!h)
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    h->pts = cJSON_CreateArray();
    if(!h->pts) {
        free(h);
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    }
    h->cfg = &ctx->cfg;
    snprintf(h->sn, sizeof(h->sn), "%s", sn);
    snprintf(h->ivs, sizeof(h->ivs), "%s", ivs);
    h->start = start;
    h->end = end;
    h->iv = iv;
    h->pg = *pg;
    h->lim = strtoll(pg->lim, NULL, 10);
    h->off = strtoll(pg->off, NULL, 10);
    api_defer_work(rs, hist_work, hist_done, hist_free, h);
    return 0;
}

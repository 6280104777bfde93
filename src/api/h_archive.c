/* h_archive.c - the archive endpoints that need the archive subsystem
 * (mcs_jobs, docs/ARCHIVE.md): one day's file downloaded and an archive run
 * triggered by an admin (R-ST-4, R-API-8). Both do their slow part on the
 * job worker (jobs.c) with a PostgreSQL connection of their own: the
 * download spools the stored object (gzip as stored, never decompressed) to
 * an unlinked temporary file that http.c then sends in chunks, so memory
 * stays bounded whatever the size of the day; the run calls job_execute()
 * exactly as `mcs job run archive` does.
 * Owns each request's job data. Thread: handlers and done on the lws loop,
 * work on the job worker. */
#include "audit.h"
#include "conn.h"
#include "err.h"
#include "handlers.h"
#include "jobs.h"
#include "localday.h"
#include "log.h"
#include "timeutil.h"

#include "../mcsd/archive.h"
#include "../mcsd/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dl_job {
    const struct mcs_config *cfg;
    int64_t day;
    FILE *f;
    long long bytes;
    int rc;
    char err[600];
};

static int dl_write(void *arg, const void *p, size_t n)
{
    struct dl_job *d = arg;
    if(fwrite(p, 1, n, d->f) != n)
        return 1;
    d->bytes += (long long)n;
    return 0;
}

/* 1 when archive_logs records an archived file of day. */
static int recorded(PGconn *pg, int64_t day)
{
    char iso[16];
    const char *v[1] = {iso};
    PGresult *r;
    int yes;

    mcs_day_iso(day, iso, sizeof(iso));
    r = PQexecParams(pg, "SELECT 1 FROM archive_logs WHERE day = $1::date AND status = 'archived'",
                     1, NULL, v, NULL, NULL, 0);
    yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    return yes;
}

static void dl_work(struct api_job *j)
{
    struct dl_job *d = j->data;
    PGconn *pg = mcs_pg_connect(d->cfg, "mcs-api-archive", d->err, sizeof(d->err));

    if(!pg) {
        d->rc = MCS_EDB;
        return;
    }
    d->f = tmpfile();
    if(!d->f) {
        d->rc = MCS_EIO;
        snprintf(d->err, sizeof(d->err), "no temporary file for the download");
        goto out;
    }
    d->rc = archive_download(d->cfg, pg, d->day, dl_write, d, d->err, sizeof(d->err));
    if(d->rc == MCS_ENOTFOUND && recorded(pg, d->day)) {
        /* archive_logs holds the file but the sink has it not: a sink
         * failure, not a day without archive. */
        d->rc = MCS_EIO;
        snprintf(d->err, sizeof(d->err), "the archived file is missing from the sink");
    }
    if(!d->rc && (fflush(d->f) || fseek(d->f, 0, SEEK_SET))) {
        d->rc = MCS_EIO;
        snprintf(d->err, sizeof(d->err), "temporary file of the download unusable");
    }
out:
    PQfinish(pg);
}

static void dl_free(void *data)
{
    struct dl_job *d = data;
    if(!d)
        return;
    if(d->f)
        fclose(d->f);
    free(d);
}

static void dl_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    struct dl_job *d = j->data;
    char name[64], ymd[16], iso[16];
    (void)ctx;

    mcs_day_iso(d->day, iso, sizeof(iso));
    switch(d->rc) {
    case 0:
        break;
    case MCS_ENOTFOUND:
        api_error(rs, 404, E_ARCH_NOTFOUND, "%s", iso);
        return;
    case MCS_ECONFIG:
        api_error(rs, 503, E_R2, "archive sink: %s", d->err);
        return;
    case MCS_EDB:
        api_error(rs, 503, E_UNAVAIL, "database: %s", d->err);
        return;
    default:
        api_error(rs, 502, E_ARCH_UPLOAD, "archive sink: %s", d->err);
        return;
    }
    mcs_day_compact(d->day, ymd, sizeof(ymd));
    snprintf(name, sizeof(name), "sensor_data_%s.csv.gz", ymd);
    rs->status = 200;
    rs->ctype = "application/gzip";
    rs->file = d->f; /* http.c closes it */
    rs->len = (size_t)d->bytes;
    d->f = NULL;
    api_header(rs, "content-disposition:", "attachment; filename=\"%s\"", name);
    LOG_I("archive", "archive download", LS("day", iso), LI("bytes", d->bytes));
}

int h_sys_archive_dl(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *s = rq->params[0];
    struct dl_job *d;
    int64_t day;

    if(strlen(s) != 10 || s[4] != '-' || s[7] != '-' || mcs_day_parse(s, &day))
        return api_error(rs, 400, E_BAD_REQ, "date must be YYYY-MM-DD");
    d = calloc(1, sizeof(*d));
    if(!d)
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    d->cfg = &ctx->cfg;
    d->day = day;
    api_defer_work(rs, dl_work, dl_done, dl_free, d);
    return 0;
}

struct run_job {
    const struct mcs_config *cfg;
    const struct mcs_job *job;
    const _Atomic int *stop; /* jobs_halting(): the run ends early on SIGTERM */
    enum mcs_job_outcome outcome;
    long long run_id;
    int db_down;
    char err[600];
    char detail[1024];
    char user[65], ip[64];
};

static void run_work(struct api_job *j)
{
    struct run_job *r = j->data;
    PGconn *pg = mcs_pg_connect(r->cfg, "mcs-api-archive", r->err, sizeof(r->err));
    struct mcs_jobctx jc;

    if(!pg) {
        r->db_down = 1;
        return;
    }
    memset(&jc, 0, sizeof(jc));
    jc.cfg = r->cfg;
    jc.pg = pg;
    jc.stop = r->stop;
    jc.now = mcs_now_ms() / 1000;
    r->outcome = job_execute(r->job, &jc, 0, "manual", r->cfg->instance_id, &r->run_id);
    snprintf(r->err, sizeof(r->err), "%s", jc.err);
    snprintf(r->detail, sizeof(r->detail), "%s", jc.detail);
    PQfinish(pg);
}

static void run_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    static struct api_req who;
    struct run_job *r = j->data;
    const char *name = job_outcome_name(r->outcome);
    cJSON *o, *after, *det;

    if(r->db_down) {
        api_error(rs, 503, E_UNAVAIL, "database: %s", r->err);
        return;
    }
    snprintf(who.user, sizeof(who.user), "%s", r->user);
    snprintf(who.ip, sizeof(who.ip), "%s", r->ip);
    after = cJSON_CreateObject();
    cJSON_AddNumberToObject(after, "run_id", (double)r->run_id);
    cJSON_AddStringToObject(after, "outcome", name);
    audit_log(ctx, &who, "system.archive.run", "archive", NULL, after);
    cJSON_Delete(after);
    if(r->outcome == JOB_FAILED) {
        api_error(rs, 502, E_ARCH_UPLOAD, "archive run %lld failed: %s", r->run_id, r->err);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "run_id", (double)r->run_id);
    cJSON_AddStringToObject(o, "outcome", name);
    if(r->err[0])
        cJSON_AddStringToObject(o, "error", r->err);
    else
        cJSON_AddNullToObject(o, "error");
    det = r->detail[0] ? cJSON_Parse(r->detail) : NULL;
    if(det)
        cJSON_AddItemToObject(o, "detail", det);
    else
        cJSON_AddNullToObject(o, "detail");
    api_json(rs, 200, o);
}

int h_sys_archive_run(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const struct mcs_job *mj = job_find("archive");
    struct run_job *r;

    if(!mj)
        return api_error(rs, 501, E_NOTIMPL, "no archive job in this build");
    r = calloc(1, sizeof(*r));
    if(!r)
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    r->cfg = &ctx->cfg;
    r->job = mj;
    r->stop = jobs_halting(ctx);
    snprintf(r->user, sizeof(r->user), "%s", rq->user);
    snprintf(r->ip, sizeof(r->ip), "%s", rq->ip);
    /* The run (COPY, gzip, upload, verify, drop) may take a while: the
     * worker does it, the loop serves other clients meanwhile. */
    api_defer_work(rs, run_work, run_done, free, r);
    return 0;
}

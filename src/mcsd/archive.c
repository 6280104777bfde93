/* archive.c - the archive job (see archive.h). A day goes through:
 * archive_logs 'running' → COPY TO STDOUT (CSV) → zlib gzip → sink upload →
 * verify → one transaction { lock the partition, count its rows = file rows,
 * drop it, archive_logs 'archived' }. Any failure before that commit deletes
 * nothing; a re-run starts the day again and overwrites the same key, so a
 * crash between upload and drop leaves no duplicate and loses nothing.
 * Owns nothing persistent. Thread: the caller's. */
#include "archive.h"
#include "conn.h"
#include "dialect.h"
#include "err.h"
#include "jobs.h"
#include "localday.h"
#include "log.h"
#include "storage_cfg.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define DAYS_MAX 4096
#define ZBUF (256 * 1024)
#define INBUF (64 * 1024)

void archive_key(int64_t day, char *out, size_t n)
{
    int y, m, d;
    mcs_civil_from_days(day, &y, &m, &d);
    snprintf(out, n, "archive/%04d/%02d/sensor_data_%04d%02d%02d.csv.gz", y, m, y, m, d);
}

/* The key of the version after old_key (NULL: the first, archive_key):
 * archive/YYYY/MM/sensor_data_YYYYMMDD.vN.csv.gz for N >= 2. */
static void archive_key_next(int64_t day, const char *old_key, char *out, size_t n)
{
    char base[128];
    int v = 1;
    archive_key(day, base, sizeof(base));
    if(old_key) {
        const char *p = strstr(old_key, ".v");
        v = p && isdigit((unsigned char)p[2]) ? (int)strtol(p + 2, NULL, 10) : 1;
    }
    if(!old_key)
        snprintf(out, n, "%s", base);
    else
        snprintf(out, n, "%.*s.v%d.csv.gz", (int)(strlen(base) - strlen(".csv.gz")), base, v + 1);
}

static int exec1(PGconn *pg, const char *sql, int n, const char *const *params, char *err,
                 size_t errn)
{
    PGresult *r = mcs_pg_query(pg, sql, n, params, PGRES_COMMAND_OK, err, errn);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int archive_due_days(PGconn *pg, const struct mcs_config *cfg, int64_t now, int64_t *days,
                     int max, char *err, size_t errn)
{
    int64_t cutoff = now - (int64_t)cfg->data_retention_days * 86400;
    int n = 0;
    const struct mcs_dialect *dl = dialect_detect(pg);
    PGresult *r;
    if(dl == &mcs_dialect_native) {
        r = mcs_pg_query(
            pg,
            "SELECT substr(c.relname, 13) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'sensor_data'::regclass AND c.relname ~ '^sensor_data_[0-9]{8}$'",
            0, NULL, PGRES_TUPLES_OK, err, errn);
        if(!r)
            return MCS_EDB;
        for(int i = 0; i < PQntuples(r) && n < max; i++) {
            int64_t d;
            if(mcs_day_parse(PQgetvalue(r, i, 0), &d))
                continue;
            if(mcs_local_midnight(d + 1) <= cutoff)
                days[n++] = d;
        }
        PQclear(r);
    }
    else {
        /* Every local day a chunk covers: the day's own chunk (made ahead
         * of time, maybe empty) or one TimescaleDB cut on UTC days. */
        r = mcs_pg_query(pg,
                         "SELECT extract(epoch FROM range_start)::bigint,"
                         " extract(epoch FROM range_end)::bigint FROM timescaledb_information.chunks"
                         " WHERE hypertable_schema = current_schema()"
                         " AND hypertable_name = 'sensor_data' ORDER BY range_start",
                         0, NULL, PGRES_TUPLES_OK, err, errn);
        if(!r)
            return MCS_EDB;
        for(int i = 0; i < PQntuples(r); i++) {
            int64_t d0 = mcs_local_day(strtoll(PQgetvalue(r, i, 0), NULL, 10));
            int64_t d1 = mcs_local_day(strtoll(PQgetvalue(r, i, 1), NULL, 10) - 1);
            for(int64_t d = d0; d <= d1 && mcs_local_midnight(d + 1) <= cutoff && n < max; d++)
                if(n == 0 || days[n - 1] < d)
                    days[n++] = d;
        }
        PQclear(r);
    }
    qsort(days, (size_t)n, sizeof(*days), cmp64);
    return n;
}

/* gzip → sink, fed by rows of COPY. */
struct zsink {
    z_stream z;
    unsigned char *out;
    unsigned char *in;
    size_t inlen;
    struct mcs_upload *up;
    int64_t bytes;
};

static int zs_drain(struct zsink *s, int flush, char *err, size_t errn)
{
    s->z.next_in = s->in;
    s->z.avail_in = (uInt)s->inlen;
    for(;;) {
        s->z.next_out = s->out;
        s->z.avail_out = ZBUF;
        int zr = deflate(&s->z, flush);
        if(zr == Z_STREAM_ERROR) {
            snprintf(err, errn, "gzip failed");
            return MCS_EIO;
        }
        size_t have = ZBUF - s->z.avail_out;
        if(have) {
            int rc = sink_upload_write(s->up, s->out, have, err, errn);
            if(rc)
                return rc;
            s->bytes += (int64_t)have;
        }
        if(flush == Z_FINISH ? zr == Z_STREAM_END : s->z.avail_out != 0)
            break;
    }
    s->inlen = 0;
    return 0;
}

static int zs_add(struct zsink *s, const char *p, size_t n, char *err, size_t errn)
{
    if(s->inlen + n > INBUF) {
        int rc = zs_drain(s, Z_NO_FLUSH, err, errn);
        if(rc)
            return rc;
    }
    if(n > INBUF) {
        /* A row larger than the staging buffer is compressed in place. */
        unsigned char *keep = s->in;
        s->in = (unsigned char *)(uintptr_t)p;
        s->inlen = n;
        int rc = zs_drain(s, Z_NO_FLUSH, err, errn);
        s->in = keep;
        return rc;
    }
    memcpy(s->in + s->inlen, p, n);
    s->inlen += n;
    return 0;
}

static void set_log(PGconn *pg, const char *days, const char *status, const char *error)
{
    char err[256];
    const char *p[3] = {days, status, error};
    if(exec1(pg,
             "UPDATE archive_logs SET status = $2, error = $3, updated_at = now() WHERE day = $1::date",
             3, p, err, sizeof(err)))
        LOG_W("archive", "archive_logs not updated", LS("day", days), LS("error", err));
}

/* Streams the day's rows through gzip into an upload; *rows receives the
 * number of data rows. */
static int export_day(PGconn *pg, int64_t lo, int64_t hi, int header, struct zsink *zs,
                      const _Atomic int *stop, int64_t *rows, char *err, size_t errn)
{
    char sql[512];
    int rc = 0;
    int64_t lines = 0;
    snprintf(sql, sizeof(sql),
             "COPY (SELECT time, sn, v_raw, ppm, temp, humi, bat, rssi, seq FROM sensor_data"
             " WHERE time >= to_timestamp(%" PRId64 ") AND time < to_timestamp(%" PRId64 "))"
             " TO STDOUT WITH (FORMAT csv%s)",
             lo, hi, header ? ", HEADER" : "");
    PGresult *r = PQexec(pg, sql);
    if(PQresultStatus(r) != PGRES_COPY_OUT) {
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
        mcs_one_line(err);
        PQclear(r);
        return MCS_EDB;
    }
    PQclear(r);
    for(;;) {
        char *buf = NULL;
        int n = PQgetCopyData(pg, &buf, 0);
        if(n == -1)
            break;
        if(n < 0) {
            snprintf(err, errn, "COPY: %s", PQerrorMessage(pg));
            mcs_one_line(err);
            rc = MCS_EDB;
            break;
        }
        if(!rc) {
            rc = zs_add(zs, buf, (size_t)n, err, errn);
            if(!rc && stop && atomic_load(stop) && !(lines & 1023)) {
                snprintf(err, errn, "stopped");
                rc = MCS_EAGAIN;
            }
            if(rc) {
                /* The rest of the day is not wanted: cancel the COPY, then
                 * read what is in flight so the connection is idle again. */
                char cerr[128];
                PGcancel *c = PQgetCancel(pg);
                if(c) {
                    PQcancel(c, cerr, sizeof(cerr));
                    PQfreeCancel(c);
                }
            }
        }
        PQfreemem(buf);
        lines++;
    }
    r = PQgetResult(pg);
    if(PQresultStatus(r) != PGRES_COMMAND_OK && !rc) {
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
        mcs_one_line(err);
        rc = MCS_EDB;
    }
    PQclear(r);
    while((r = PQgetResult(pg)))
        PQclear(r);
    *rows = header ? (lines > 0 ? lines - 1 : 0) : lines;
    return rc;
}

/* The previous version of an archived day, gunzipped into the new one. */
struct oldfile {
    z_stream z;
    struct zsink *zs;
    unsigned char *buf;
    int64_t lines;
    int ended;
    char err[256];
};

static int old_chunk(void *arg, const void *p, size_t n)
{
    struct oldfile *o = arg;
    o->z.next_in = (unsigned char *)(uintptr_t)p;
    o->z.avail_in = (uInt)n;
    while(o->z.avail_in > 0) {
        if(o->ended) {
            /* A further gzip member: ours are one, but a file is a file. */
            if(inflateReset(&o->z) != Z_OK)
                return -1;
            o->ended = 0;
        }
        o->z.next_out = o->buf;
        o->z.avail_out = INBUF;
        int zr = inflate(&o->z, Z_NO_FLUSH);
        if(zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            snprintf(o->err, sizeof(o->err), "the archived file does not gunzip");
            return -1;
        }
        size_t have = INBUF - o->z.avail_out;
        for(size_t i = 0; i < have; i++)
            o->lines += o->buf[i] == '\n';
        if(have && zs_add(o->zs, (const char *)o->buf, have, o->err, sizeof(o->err)))
            return -1;
        if(zr == Z_STREAM_END)
            o->ended = 1;
        else if(zr == Z_BUF_ERROR && !have)
            break;
    }
    return 0;
}

/* Streams the object old_key (header and old_rows data rows) into zs.
 * Returns 0, or MCS_ECORRUPT when it does not hold old_rows rows. */
static int copy_old(struct mcs_sink *k, const char *old_key, int64_t old_rows, struct zsink *zs,
                    char *err, size_t errn)
{
    struct oldfile o;
    int rc;
    memset(&o, 0, sizeof(o));
    o.zs = zs;
    if(!(o.buf = malloc(INBUF)))
        return MCS_ENOMEM;
    if(inflateInit2(&o.z, 15 + 16) != Z_OK) {
        free(o.buf);
        return MCS_ENOMEM;
    }
    rc = k->ops->get(k, old_key, old_chunk, &o, err, errn);
    if(rc && o.err[0])
        snprintf(err, errn, "%s: %s", old_key, o.err);
    else if(!rc && (!o.ended || o.lines != old_rows + 1)) {
        snprintf(err, errn, "%s holds %" PRId64 " lines%s, archive_logs says %" PRId64 " rows",
                 old_key, o.lines, o.ended ? "" : " (truncated)", old_rows);
        rc = MCS_ECORRUPT;
    }
    inflateEnd(&o.z);
    free(o.buf);
    return rc;
}

/* The last step, all or nothing: the partition's rows must be exactly the
 * file's; then they go and archive_logs says where they went. */
static int drop_verified(PGconn *pg, int64_t day, int64_t lo, int64_t hi, int64_t rows,
                         const char *days, const struct mcs_upload_result *ur,
                         const char *sinkname, int record, int64_t file_rows, const char *key,
                         char *err, size_t errn)
{
    char los[32], his[32], rowss[32], bytess[32], e2[128];
    const struct mcs_dialect *dl = dialect_detect(pg);
    int rc = MCS_EDB;
    PGresult *r = NULL;
    snprintf(los, sizeof(los), "%" PRId64, lo);
    snprintf(his, sizeof(his), "%" PRId64, hi);
    snprintf(rowss, sizeof(rowss), "%" PRId64, file_rows);
    snprintf(bytess, sizeof(bytess), "%" PRId64, ur ? ur->bytes : 0);
    if(exec1(pg, "BEGIN", 0, NULL, err, errn))
        return MCS_EDB;
    /* No row can enter or leave the day between the count and the drop. */
    if(dl->lock_day(pg, day, err, errn))
        goto out;
    {
        const char *p[2] = {los, his};
        r = mcs_pg_query(pg,
                         "SELECT count(*) FROM sensor_data WHERE time >= to_timestamp($1::bigint)"
                         " AND time < to_timestamp($2::bigint)",
                         2, p, PGRES_TUPLES_OK, err, errn);
        if(!r)
            goto out;
        int64_t have = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        r = NULL;
        if(have != rows) {
            snprintf(err, errn, "day %s holds %" PRId64 " rows, the file %" PRId64 "; not dropped",
                     days, have, rows);
            rc = MCS_ECORRUPT;
            goto out;
        }
    }
    if(dl->drop_day(pg, day)) {
        snprintf(err, errn, "dropping day %s failed", days);
        goto out;
    }
    if(record) {
        const char *p[8] = {days, file_rows ? "archived" : "empty", rowss, bytess,
                            ur && file_rows ? ur->md5 : NULL, ur && file_rows ? ur->etag : NULL,
                            sinkname, key};
        if(exec1(pg,
                 "UPDATE archive_logs SET status = $2, row_count = $3::bigint,"
                 " size_bytes = $4::bigint, md5 = $5, etag = $6, sink = $7, error = NULL,"
                 " file_name = $8, updated_at = now() WHERE day = $1::date",
                 8, p, err, errn))
            goto out;
    }
    if(exec1(pg, "COMMIT", 0, NULL, err, errn))
        goto out;
    return 0;
out:
    PQclear(r);
    exec1(pg, "ROLLBACK", 0, NULL, e2, sizeof(e2));
    return rc;
}

/* Records a failure of day `days`. A day archived before keeps its status
 * (its file is still the truth for history and a later merge); others
 * become 'failed'. */
static void set_failed(PGconn *pg, const char *days, int merging, const char *error)
{
    char err[256];
    const char *p[2] = {days, error};
    if(!merging) {
        set_log(pg, days, "failed", error);
        return;
    }
    if(exec1(pg, "UPDATE archive_logs SET error = $2, updated_at = now() WHERE day = $1::date", 2,
             p, err, sizeof(err)))
        LOG_W("archive", "archive_logs not updated", LS("day", days), LS("error", err));
}

int archive_day(PGconn *pg, struct mcs_sink *k, const struct mcs_config *cfg, int64_t day,
                const _Atomic int *stop, struct archive_day_result *res, char *err, size_t errn)
{
    char key[160], days[16], how[16], old_key[160] = "";
    int64_t lo = mcs_local_midnight(day), hi = mcs_local_midnight(day + 1), rows = 0;
    int64_t old_rows = 0;
    struct zsink zs;
    struct mcs_upload_result ur;
    int rc, zinit = 0, merging = 0;
    PGresult *r;

    memset(res, 0, sizeof(*res));
    memset(&zs, 0, sizeof(zs));
    archive_key(day, key, sizeof(key));
    mcs_day_iso(day, days, sizeof(days));
    {
        const char *p[3] = {days, key, k->ops->name};
        r = mcs_pg_query(pg,
                         "INSERT INTO archive_logs (day, file_name, status, sink) VALUES "
                         "($1::date, $2, 'running', $3) "
                         "ON CONFLICT (day) DO UPDATE SET status = CASE WHEN archive_logs.status IN"
                         " ('archived', 'empty') THEN archive_logs.status ELSE 'running' END,"
                         " updated_at = now() RETURNING status, file_name, coalesce(row_count, 0)",
                         3, p, PGRES_TUPLES_OK, err, errn);
        if(!r)
            return MCS_EDB;
        int done = strcmp(PQgetvalue(r, 0, 0), "running") != 0;
        merging = !strcmp(PQgetvalue(r, 0, 0), "archived");
        snprintf(old_key, sizeof(old_key), "%s", PQgetvalue(r, 0, 1));
        old_rows = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        PQclear(r);
        if(done) {
            /* Archived before: the partition is most often an empty one made
             * again ahead of time, dropped quietly. Rows in it came late (a
             * journal replayed after an outage): they are merged into a new
             * version of the day's file below, never lost by overwriting. */
            rc = drop_verified(pg, day, lo, hi, 0, days, NULL, k->ops->name, 0, 0, NULL, err,
                               errn);
            if(rc != MCS_ECORRUPT) {
                snprintf(res->status, sizeof(res->status), "skipped");
                return rc;
            }
            LOG_I("archive", "archived day holds late rows: merging", LS("day", days),
                  LS("old_key", merging ? old_key : ""));
            if(!merging) {
                /* 'empty': no file to merge with; archived as a new day. */
                set_log(pg, days, "running", NULL);
            }
        }
    }
    if(merging)
        archive_key_next(day, old_key, key, sizeof(key));
    /* Times in the file are the plant's local time with their offset. */
    {
        const char *p[1] = {cfg->tz};
        r = mcs_pg_query(pg, "SELECT set_config('TimeZone', $1, false)", 1, p, PGRES_TUPLES_OK, err,
                         errn);
        if(!r)
            return MCS_EDB;
        PQclear(r);
    }
    zs.out = malloc(ZBUF);
    zs.in = malloc(INBUF);
    if(!zs.out || !zs.in) {
        rc = MCS_ENOMEM;
        goto fail;
    }
    if(deflateInit2(&zs.z, cfg->archive_gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
       Z_OK) {
        rc = MCS_ENOMEM;
        goto fail;
    }
    zinit = 1;
    if((rc = sink_upload_begin(k, key, &zs.up, err, errn)))
        goto fail;
    if(merging && (rc = copy_old(k, old_key, old_rows, &zs, err, errn)))
        goto fail;
    if((rc = export_day(pg, lo, hi, !merging, &zs, stop, &rows, err, errn)))
        goto fail;
    if(rows == 0 && !merging) {
        /* A day without readings leaves no file; its (empty) partition goes. */
        sink_upload_abort(zs.up);
        zs.up = NULL;
        if((rc = drop_verified(pg, day, lo, hi, 0, days, NULL, k->ops->name, 1, 0, key, err,
                               errn)))
            goto fail;
        snprintf(res->status, sizeof(res->status), "empty");
        goto done;
    }
    if((rc = zs_drain(&zs, Z_FINISH, err, errn)))
        goto fail;
    rc = sink_upload_finish(zs.up, &ur, err, errn);
    zs.up = NULL;
    if(rc)
        goto fail;
    if((rc = sink_verify(k, key, &ur, cfg->archive_verify_download, how, err, errn)))
        goto fail;
    LOG_I("archive", "day uploaded and verified", LS("day", days), LS("key", key),
          LI("rows", rows), LI("merged_rows", old_rows), LI("bytes", ur.bytes), LS("md5", ur.md5),
          LS("verified_by", how), LI("parts", ur.parts));
    if(getenv("MCS_TEST_ARCHIVE_CRASH")) {
        /* Test hook: die between upload and drop (tests/integration/test_archive.py). */
        LOG_W("archive", "MCS_TEST_ARCHIVE_CRASH: exiting before the drop");
        _exit(99);
    }
    if((rc = drop_verified(pg, day, lo, hi, rows, days, &ur, k->ops->name, 1,
                           rows + (merging ? old_rows : 0), key, err, errn)))
        goto fail;
    if(merging) {
        /* The new version is the day's file now; the old one is only a
         * leftover (history caches by key, so no reader is stale). */
        char e2[256];
        if(k->ops->del(k, old_key, e2, sizeof(e2)))
            LOG_W("archive", "old version of the day not deleted", LS("key", old_key),
                  LS("error", e2));
    }
    res->rows = rows;
    res->bytes = ur.bytes;
    snprintf(res->md5, sizeof(res->md5), "%s", ur.md5);
    snprintf(res->status, sizeof(res->status), merging ? "merged" : "archived");
done:
    deflateEnd(&zs.z);
    free(zs.out);
    free(zs.in);
    return 0;
fail:
    sink_upload_abort(zs.up);
    if(zinit)
        deflateEnd(&zs.z);
    free(zs.out);
    free(zs.in);
    set_failed(pg, days, merging, err);
    return rc ? rc : MCS_EIO;
}

enum mcs_job_outcome archive_job(struct mcs_jobctx *jc)
{
    int64_t *days = malloc(DAYS_MAX * sizeof(*days));
    struct mcs_sink *k = NULL;
    enum mcs_job_outcome o = JOB_FAILED;
    int n, done = 0, empty = 0, merged = 0, failed = 0, streak = 0;
    int64_t rows = 0, bytes = 0;
    char first[16] = "", last[16] = "", failed_days[200] = "";

    if(!days) {
        snprintf(jc->err, sizeof(jc->err), "out of memory");
        return JOB_FAILED;
    }
    n = archive_due_days(jc->pg, jc->cfg, jc->now, days, DAYS_MAX, jc->err, sizeof(jc->err));
    if(n < 0)
        goto out;
    if(n > 0 && storage_sink_open(jc->cfg, jc->pg, jc->stop, &k, jc->err, sizeof(jc->err)))
        goto out;
    for(int i = 0; i < n; i++) {
        struct archive_day_result r;
        char e[512];
        if(job_should_stop(jc)) {
            snprintf(jc->err, sizeof(jc->err), "stopped after %d of %d days", i, n);
            goto out;
        }
        if(archive_day(jc->pg, k, jc->cfg, days[i], jc->stop, &r, e, sizeof(e))) {
            char ds[16];
            mcs_day_iso(days[i], ds, sizeof(ds));
            LOG_W("archive", "day failed", LS("day", ds), LS("error", e));
            /* One day's trouble (rows that do not match, a damaged old
             * version) does not hold back the newer days: each is archived
             * and dropped on its own. The job fails and names the first
             * failed day. Three failures in a row look like the sink or the
             * database, not the days: the run stops there. */
            if(!failed++)
                snprintf(jc->err, sizeof(jc->err), "day %s: %.480s", ds, e);
            if(strlen(failed_days) + 12 < sizeof(failed_days))
                snprintf(failed_days + strlen(failed_days), sizeof(failed_days) - strlen(failed_days),
                         "%s\"%s\"", failed_days[0] ? "," : "", ds);
            if(++streak >= 3 || PQstatus(jc->pg) == CONNECTION_BAD) {
                snprintf(jc->err + strlen(jc->err), sizeof(jc->err) - strlen(jc->err),
                         " (run stopped after %d failed days in a row)", streak);
                goto out;
            }
            continue;
        }
        streak = 0;
        if(!strcmp(r.status, "archived") || !strcmp(r.status, "merged")) {
            done++;
            merged += !strcmp(r.status, "merged");
            rows += r.rows;
            bytes += r.bytes;
        }
        else if(!strcmp(r.status, "empty"))
            empty++;
        if(!first[0])
            mcs_day_iso(days[i], first, sizeof(first));
        mcs_day_iso(days[i], last, sizeof(last));
    }
    o = failed ? JOB_FAILED : JOB_OK;
out:
    snprintf(jc->detail, sizeof(jc->detail),
             "{\"days_due\":%d,\"archived\":%d,\"merged\":%d,\"empty\":%d,\"failed\":[%s],"
             "\"rows\":%" PRId64 ",\"bytes\":%" PRId64 ",\"first\":\"%s\",\"last\":\"%s\","
             "\"sink\":\"%s\"}",
             n < 0 ? 0 : n, done, merged, empty, failed_days, rows, bytes, first, last,
             k ? k->ops->name : jc->cfg->archive_sink);
    sink_free(k);
    free(days);
    return o;
}

int archive_download(const struct mcs_config *cfg, PGconn *pg, int64_t day,
                     int (*cb)(void *arg, const void *p, size_t n), void *arg, char *err,
                     size_t errn)
{
    char days[16], key[600];
    struct mcs_sink *k = NULL;
    mcs_day_iso(day, days, sizeof(days));
    const char *p[1] = {days};
    PGresult *r = mcs_pg_query(
        pg, "SELECT file_name FROM archive_logs WHERE day = $1::date AND status = 'archived'", 1, p,
        PGRES_TUPLES_OK, err, errn);
    if(!r)
        return MCS_EDB;
    if(PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errn, "no archived file for %s", days);
        return MCS_ENOTFOUND;
    }
    snprintf(key, sizeof(key), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    int rc = storage_sink_open(cfg, pg, NULL, &k, err, errn);
    if(!rc)
        rc = k->ops->get(k, key, cb, arg, err, errn);
    sink_free(k);
    return rc;
}

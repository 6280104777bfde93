/* batch.c - one journal batch into PostgreSQL (see batch.h).
 * Owns the batch's transaction and the COPY buffer. Thread: the store thread. */
#include "batch.h"
#include "alarm_db.h" /* issue #7 */
#include "conn.h"
#include "err.h"
#include "localday.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_MAX_BYTES (256u << 20)

enum { MODE_COPY = 0, MODE_STAGED = 1, MODE_ROWS = 2 };

int batch_init(struct mcs_batchdb *b, const char *instance, const char *spool_id)
{
    memset(b, 0, sizeof(*b));
    b->instance = instance;
    b->spool_id = spool_id;
    return copybuf_init(&b->copy, COPY_MAX_BYTES);
}

void batch_cleanup(struct mcs_batchdb *b)
{
    copybuf_cleanup(&b->copy);
}

enum mcs_pgfail batch_classify(PGconn *pg, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if(PQstatus(pg) == CONNECTION_BAD)
        return MCS_PGF_CONN;
    if(!st || strlen(st) != 5)
        return MCS_PGF_TRANSIENT;
    if(!strcmp(st, "23505"))
        return MCS_PGF_DUP;
    if(!strcmp(st, "23514"))
        return MCS_PGF_NO_PARTITION;
    if(!strncmp(st, "22", 2) || !strncmp(st, "23", 2))
        return MCS_PGF_DATA;
    /* 40001/40P01 serialization and deadlock, 53xxx resources, 55P03 lock
     * timeout, 57014 statement timeout or cancel, 57P0x shutdown, XX...:
     * nothing is wrong with the rows; the same batch is tried again. */
    return MCS_PGF_TRANSIENT;
}

/* Records a failed result in b->err ("SQLSTATE message") and classifies it. */
static enum mcs_pgfail failed(struct mcs_batchdb *b, const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(b->pg);
    snprintf(b->err, sizeof(b->err), "%s %s", st ? st : "-----", msg && *msg ? msg : "failed");
    char *nl = strchr(b->err, '\n');
    if(nl)
        *nl = '\0';
    return batch_classify(b->pg, r);
}

/* Runs one statement with text parameters. Returns MCS_PGF_NONE or why it
 * failed. */
static enum mcs_pgfail run(struct mcs_batchdb *b, const char *sql, int np, const char *const *p,
                           int *rows)
{
    PGresult *r = np ? PQexecParams(b->pg, sql, np, NULL, p, NULL, NULL, 0) : PQexec(b->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    enum mcs_pgfail f = MCS_PGF_NONE;
    if(st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        f = failed(b, r);
    else if(rows)
        *rows = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return f;
}

static void day_range(int64_t ts, int64_t *day)
{
    /* Partitions are whole days of the storage dialect (dialect.h): the
     * plant's local days since issue #10. */
    *day = mcs_local_day(ts);
}

int batch_cover(struct mcs_batchdb *b, int64_t min_ts, int64_t max_ts)
{
    int64_t lo, hi;
    day_range(min_ts, &lo);
    day_range(max_ts, &hi);
    if(b->parts_hi && lo >= b->parts_lo && hi <= b->parts_hi)
        return 0;
    if(b->dialect->ensure_days(b->pg, lo, hi)) {
        snprintf(b->err, sizeof(b->err), "cannot create the partitions of the batch's days");
        return MCS_EDB;
    }
    if(b->parts_hi && lo <= b->parts_hi + 1 && hi >= b->parts_lo - 1) {
        b->parts_lo = lo < b->parts_lo ? lo : b->parts_lo;
        b->parts_hi = hi > b->parts_hi ? hi : b->parts_hi;
    }
    else {
        b->parts_lo = lo;
        b->parts_hi = hi;
    }
    return 0;
}

/* Sends the prepared COPY buffer into table. Returns MCS_PGF_NONE (rows set)
 * or why it failed. */
static enum mcs_pgfail copy_into(struct mcs_batchdb *b, const char *table, int *rows)
{
    char sql[160];
    PGresult *r;
    enum mcs_pgfail f = MCS_PGF_NONE;

    snprintf(sql, sizeof(sql), "COPY %s (" MCS_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", table);
    r = PQexec(b->pg, sql);
    if(PQresultStatus(r) != PGRES_COPY_IN) {
        f = failed(b, r);
        PQclear(r);
        return f;
    }
    PQclear(r);
    if(PQputCopyData(b->pg, (const char *)b->copy.data, (int)b->copy.len) != 1 ||
       PQputCopyEnd(b->pg, NULL) != 1)
        f = failed(b, NULL);
    while((r = PQgetResult(b->pg))) {
        if(PQresultStatus(r) == PGRES_COMMAND_OK)
            *rows = (int)strtol(PQcmdTuples(r), NULL, 10);
        else if(f == MCS_PGF_NONE)
            f = failed(b, r);
        PQclear(r);
    }
    return f;
}

static enum mcs_pgfail write_checkpoint(struct mcs_batchdb *b, int64_t next)
{
    char pos[24];
    const char *p[3] = {b->instance, pos, b->spool_id};
    snprintf(pos, sizeof(pos), "%" PRId64, next);
    return run(b,
               "INSERT INTO ingest_checkpoint (instance, segment, \"offset\", spool_id) "
               "VALUES ($1, 0, $2, $3) ON CONFLICT (instance) DO UPDATE "
               "SET \"offset\" = EXCLUDED.\"offset\", spool_id = EXCLUDED.spool_id, "
               "updated_at = now()",
               3, p, NULL);
}

/* Status records in the global lock order (sn, then journal order): two
 * instances updating crossing devices' rows wait for each other instead of
 * deadlocking (issue #15); a device's last status still wins. */
static int status_cmp(const void *a, const void *b)
{
    const struct mcs_jrec *x = *(const struct mcs_jrec *const *)a;
    const struct mcs_jrec *y = *(const struct mcs_jrec *const *)b;
    int c = strncmp(x->sn, y->sn, MCS_SN_MAX);
    return c ? c : (x < y ? -1 : x > y);
}

static enum mcs_pgfail write_statuses(struct mcs_batchdb *b, const struct mcs_jrec *recs, int n)
{
    const struct mcs_jrec **st;
    enum mcs_pgfail f = MCS_PGF_NONE;
    int k = 0;

    for(int i = 0; i < n; i++)
        k += recs[i].type == MCS_JREC_STATUS;
    if(!k)
        return MCS_PGF_NONE;
    if(!(st = malloc((size_t)k * sizeof(*st)))) {
        snprintf(b->err, sizeof(b->err), "out of memory");
        return MCS_PGF_TRANSIENT;
    }
    k = 0;
    for(int i = 0; i < n; i++)
        if(recs[i].type == MCS_JREC_STATUS)
            st[k++] = &recs[i];
    qsort(st, (size_t)k, sizeof(*st), status_cmp);
    for(int i = 0; i < k && !f; i++) {
        char sn[MCS_SN_MAX + 1];
        jrec_sn(st[i], sn);
        const char *p[2] = {sn, st[i]->online ? "online" : "offline"};
        f = run(b, "UPDATE devices SET status = $2 WHERE sn = $1", 2, p, NULL);
    }
    free(st);
    return f;
}

static void fmt_dbl(char *out, size_t n, double v, int present)
{
    if(present)
        snprintf(out, n, "%.17g", v);
    else
        out[0] = '\0';
}

/* MODE_ROWS: each reading on its own under a savepoint; a row the database
 * refuses for its content goes to sensor_quarantine with the SQLSTATE and
 * message, in the same transaction. */
static enum mcs_pgfail rows_one_by_one(struct mcs_batchdb *b, const struct mcs_jrec *recs, int n,
                                       struct mcs_batch_result *res)
{
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &recs[i];
        char sn[MCS_SN_MAX + 1], ts[24], seq[16], v[4][32], bat[16], rssi[16], err[16], fl[16];
        int rows = 0;
        enum mcs_pgfail f;
        if(r->type != MCS_JREC_READING)
            continue;
        jrec_sn(r, sn);
        snprintf(ts, sizeof(ts), "%" PRId64, r->ts);
        snprintf(seq, sizeof(seq), "%d", r->seq);
        fmt_dbl(v[0], sizeof(v[0]), r->v_raw, 1);
        fmt_dbl(v[1], sizeof(v[1]), r->ppm, 1);
        fmt_dbl(v[2], sizeof(v[2]), r->temp, r->temp == r->temp);
        fmt_dbl(v[3], sizeof(v[3]), r->humi, r->humi == r->humi);
        snprintf(bat, sizeof(bat), "%d", r->bat);
        snprintf(rssi, sizeof(rssi), "%d", r->rssi);
        snprintf(err, sizeof(err), "%d", r->err);
        snprintf(fl, sizeof(fl), "%d", r->flags);
        const char *p[11] = {ts,   sn,  v[0], v[1], v[2][0] ? v[2] : NULL, v[3][0] ? v[3] : NULL,
                             r->bat == MCS_ABSENT_INT ? NULL : bat,
                             r->rssi == MCS_ABSENT_INT ? NULL : rssi, seq, err, fl};
        if((f = run(b, "SAVEPOINT mcs_row", 0, NULL, NULL)))
            return f;
        f = run(b,
                "INSERT INTO sensor_data (" MCS_COPY_COLUMNS ") VALUES (to_timestamp($1::bigint),"
                " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                11, p, &rows);
        if(f == MCS_PGF_NONE) {
            res->inserted += rows;
            continue;
        }
        if(f != MCS_PGF_DATA && f != MCS_PGF_NO_PARTITION)
            return f;
        /* The row itself is refused: keep it, with the reason, and go on. */
        char why[sizeof(b->err)];
        snprintf(why, sizeof(why), "%s", b->err);
        if((f = run(b, "ROLLBACK TO SAVEPOINT mcs_row", 0, NULL, NULL)))
            return f;
        char state[6];
        snprintf(state, sizeof(state), "%.5s", why);
        const char *q[14] = {b->instance, sn, ts, p[8], p[2], p[3], p[4], p[5], p[6], p[7],
                             err, fl, state, why + (strlen(why) > 6 ? 6 : 0)};
        if((f = run(b,
                    "INSERT INTO sensor_quarantine (instance, sn, ts, seq, v_raw, ppm, temp, humi,"
                    " bat, rssi, err, flags, sqlstate, reason) VALUES ($1, $2, $3, $4, $5, $6, $7,"
                    " $8, $9, $10, $11, $12, $13, $14)",
                    14, q, NULL)))
            return f;
        res->quarantined++;
        LOG_E("store", "reading refused by the database; quarantined", LS("sn", sn),
              LS("error", why));
    }
    return MCS_PGF_NONE;
}

/* One attempt in one transaction. Returns MCS_PGF_NONE when committed. */
static enum mcs_pgfail try_batch(struct mcs_batchdb *b, const struct mcs_jrec *recs, int n,
                                 int64_t next, int mode, struct mcs_batch_result *res)
{
    enum mcs_pgfail f;
    int rows = 0;

    res->inserted = res->quarantined = 0;
    if((f = run(b, "BEGIN", 0, NULL, NULL)))
        return f; /* nothing advances */
    if(mode == MODE_ROWS)
        f = rows_one_by_one(b, recs, n, res);
    else if(b->copy.rows && mode == MODE_COPY) {
        f = copy_into(b, "sensor_data", &rows);
        res->inserted = rows;
    }
    else if(b->copy.rows) {
        if(!(f = copy_into(b, "mcs_stage", &rows)))
            f = run(b,
                    "INSERT INTO sensor_data (" MCS_COPY_COLUMNS ") SELECT " MCS_COPY_COLUMNS
                    " FROM mcs_stage ON CONFLICT DO NOTHING",
                    0, NULL, &res->inserted);
    }
    if(!f)
        f = write_statuses(b, recs, n);
    /* Alarm decisions of the batch (issues #7, #15): same transaction, so
     * the readings and their decisions commit together or not at all. A
     * failed evaluation fails the batch: rolled back, retried as a whole. */
    if(!f && b->alarm) {
        int arc = alarm_eval_batch(b->alarm, b->pg, recs, (size_t)n, b->err, sizeof(b->err));
        if(arc == MCS_EDB)
            f = MCS_PGF_CONN;
        else if(arc)
            f = MCS_PGF_TRANSIENT;
    }
    if(!f)
        f = write_checkpoint(b, next);
    if(!f)
        f = run(b, "COMMIT", 0, NULL, NULL);
    if(f && f != MCS_PGF_CONN) {
        char keep[sizeof(b->err)];
        memcpy(keep, b->err, sizeof(keep));
        if(run(b, "ROLLBACK", 0, NULL, NULL) == MCS_PGF_CONN)
            f = MCS_PGF_CONN;
        memcpy(b->err, keep, sizeof(keep));
    }
    return f;
}

int batch_write(struct mcs_batchdb *b, const struct mcs_jrec *recs, int n, int64_t next,
                struct mcs_batch_result *res)
{
    int64_t min_ts = INT64_MAX, max_ts = INT64_MIN;
    int mode = MODE_COPY, parts_retried = 0;

    memset(res, 0, sizeof(*res));
    copybuf_reset(&b->copy);
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &recs[i];
        if(r->type != MCS_JREC_READING)
            continue;
        res->readings++;
        min_ts = r->ts < min_ts ? r->ts : min_ts;
        max_ts = r->ts > max_ts ? r->ts : max_ts;
        if(copybuf_add(&b->copy, r)) {
            snprintf(b->err, sizeof(b->err), "COPY buffer limit reached");
            return MCS_ETOOBIG;
        }
    }
    copybuf_finish(&b->copy);
    /* Partitions come from the batch's own days: a reading spooled through
     * a long outage may be older than the window kept ahead of time. */
    if(res->readings && batch_cover(b, min_ts, max_ts))
        return PQstatus(b->pg) == CONNECTION_BAD ? MCS_EDB : MCS_EAGAIN;
    for(int attempt = 0; attempt < 4; attempt++) {
        enum mcs_pgfail f = try_batch(b, recs, n, next, mode, res);
        switch(f) {
        case MCS_PGF_NONE:
            return 0;
        case MCS_PGF_CONN:
            return MCS_EDB;
        case MCS_PGF_TRANSIENT:
            return MCS_EAGAIN;
        case MCS_PGF_DUP:
            /* A resend or redelivery: the staged path drops what is stored. */
            mode = mode == MODE_COPY ? MODE_STAGED : MODE_ROWS;
            break;
        case MCS_PGF_NO_PARTITION:
            if(!parts_retried && mode != MODE_ROWS) {
                /* Partitions may have been dropped meanwhile (archive). */
                parts_retried = 1;
                b->parts_lo = b->parts_hi = 0;
                if(batch_cover(b, min_ts, max_ts))
                    return PQstatus(b->pg) == CONNECTION_BAD ? MCS_EDB : MCS_EAGAIN;
                break;
            }
            mode = MODE_ROWS;
            break;
        case MCS_PGF_DATA:
            if(mode == MODE_ROWS)
                return MCS_EAGAIN; /* the quarantine insert itself failed */
            mode = MODE_ROWS;
            break;
        }
        LOG_W("store", "batch refused; trying again row by row or staged",
              LS("error", b->err), LI("mode", mode), LI("rows", res->readings));
    }
    return MCS_EAGAIN;
}

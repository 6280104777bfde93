/* store.c - the store thread (see store.h): reads batches back from the
 * journal checkpoint, has batch.c write each one in one transaction with the
 * checkpoint (exactly once), then mirror.c updates the live state; between
 * batches the periodic duties (metrics, device statistics, partitions,
 * offline expiry). A transient database failure is retried with back-off and
 * never moves the checkpoint past rows that are not stored.
 * Owns its PostgreSQL and Redis connections. Thread: its own. */
#include "store.h"
#include "alarm_db.h"
#include "batch.h"
#include "cache.h"
#include "conn.h"
#include "devstats.h"
#include "err.h"
#include "log.h"
#include "mirror.h"
#include "timeutil.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mcs_store {
    struct mcsd *d;
    pthread_t th;
    _Atomic int done;
    struct mcs_batchdb db;   /* db.pg is the connection (NULL while down) */
    struct mcs_cache cache;
    struct mcs_mirror mirror;
    struct mcs_devstats stats;
    struct mcs_jrec *recs;
    int max_rows;
    int64_t pos;             /* journal position stored so far */
    int64_t next_connect_ms, next_metrics_ms, next_flush_ms, next_parts_ms, next_expire_ms;
    int64_t next_rt_ms, retry_at_ms, next_cmd_ms;
    int connect_backoff_ms, retry_backoff_ms;
};

static int64_t now_s(void)
{
    return mcs_now_ms() / 1000;
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if(f) {
        if(fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Sleeps up to ms, waking early when mcsd stops. */
static void nap(struct mcs_store *s, int64_t ms)
{
    for(int64_t end = mcs_mono_ms() + ms; !atomic_load(&s->d->ingest_done);) {
        int64_t left = end - mcs_mono_ms();
        if(left <= 0)
            break;
        mcs_sleep_ms(left < 50 ? left : 50);
    }
}

static void disconnect(struct mcs_store *s, const char *why)
{
    if(s->db.pg) {
        LOG_W("store", "database connection lost", LS("error", why));
        PQfinish(s->db.pg);
    }
    s->db.pg = NULL;
    s->db.parts_lo = s->db.parts_hi = 0;
    atomic_store(&s->d->metrics.db_up, 0);
    s->next_connect_ms = mcs_mono_ms() + s->connect_backoff_ms;
    if(s->connect_backoff_ms < 5000)
        s->connect_backoff_ms *= 2;
}

/* Partitions for the hot window and two days ahead, refreshed hourly. */
static void ensure_partitions(struct mcs_store *s)
{
    int64_t now = now_s();
    int rc = batch_cover(&s->db, now - ((int64_t)s->d->cfg->data_retention_days + 1) * 86400,
                         now + 2 * 86400);
    if(rc)
        LOG_W("store", "cannot create partitions ahead", LS("error", s->db.err));
    s->next_parts_ms = mcs_mono_ms() + (rc ? 60000 : 3600000);
}

/* Where to resume: the checkpoint, when it belongs to this spool. */
static int load_checkpoint(struct mcs_store *s, char *err, size_t errn)
{
    struct mcs_journal *j = &s->d->journal;
    const char *params[1] = {s->d->cfg->instance_id};
    PGresult *r = PQexecParams(s->db.pg,
                               "SELECT \"offset\", spool_id FROM ingest_checkpoint "
                               "WHERE instance = $1",
                               1, NULL, params, NULL, NULL, 0);
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return MCS_EDB;
    }
    int64_t oldest = journal_oldest(j), wpos = atomic_load(&j->wpos), ck = oldest;
    if(PQntuples(r)) {
        const char *id = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
        ck = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if(id && strcmp(id, j->spool_id) != 0) {
            /* Another spool's position means nothing here: replay this
             * spool whole; the unique index drops what is stored. */
            LOG_W("store", "checkpoint belongs to another spool directory; replaying the spool",
                  LS("checkpoint_spool", id), LS("spool", j->spool_id), LI("oldest", oldest));
            ck = oldest;
        }
        else if(ck < oldest || ck > wpos) {
            LOG_W("store", "journal checkpoint outside the spool; replaying the spool",
                  LI("checkpoint", ck), LI("oldest", oldest), LI("end", wpos));
            ck = oldest;
        }
    }
    PQclear(r);
    s->pos = ck;
    journal_commit(j, ck);
    return 0;
}

static int connect_db(struct mcs_store *s)
{
    char err[512], sql[96];

    s->db.pg = mcs_pg_connect(s->d->cfg, "mcsd-store", err, sizeof(err));
    if(!s->db.pg) {
        disconnect(s, err);
        return MCS_EDB;
    }
    s->db.dialect = dialect_detect(s->db.pg);
    /* A hung statement must not hold the thread (and the stop) for ever. */
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", s->d->cfg->db_statement_timeout_ms);
    if(mcs_pg_exec(s->db.pg, sql, err, sizeof(err)) ||
       mcs_pg_exec(s->db.pg,
                   "CREATE TEMP TABLE IF NOT EXISTS mcs_stage (LIKE sensor_data) "
                   "ON COMMIT DELETE ROWS",
                   err, sizeof(err)) ||
       load_checkpoint(s, err, sizeof(err))) {
        disconnect(s, err);
        return MCS_EDB;
    }
    ensure_partitions(s);
    s->connect_backoff_ms = 500;
    atomic_store(&s->d->metrics.db_up, 1);
    LOG_I("store", "database connected", LS("dialect", s->db.dialect->name),
          LI("journal_pos", s->pos), LS("spool", s->d->journal.spool_id));
    return 0;
}

/* Stores recs[0..n) ending at journal position next. Nothing advances
 * unless the batch committed. */
static void store_batch(struct mcs_store *s, int n, int64_t next)
{
    struct mcsd *d = s->d;
    struct mcs_batch_result res;
    int rc = batch_write(&s->db, s->recs, n, next, &res);

    if(rc == MCS_EDB) {
        disconnect(s, s->db.err);
        return;
    }
    if(rc) {
        /* Transient (timeout, deadlock, lock, resources, cancel): the same
         * batch again after a pause that grows to 10 s. */
        atomic_fetch_add(&d->metrics.store_retries, 1);
        LOG_W("store", "batch not stored; retrying", LS("error", s->db.err),
              LI("retry_ms", s->retry_backoff_ms), LI("rows", res.readings));
        s->retry_at_ms = mcs_mono_ms() + s->retry_backoff_ms;
        s->retry_backoff_ms = s->retry_backoff_ms < 5000 ? s->retry_backoff_ms * 2 : 10000;
        return;
    }
    s->retry_backoff_ms = 250;
    s->pos = next;
    journal_commit(&d->journal, next);
    mirror_batch(&s->mirror, d, &s->cache, s->recs, n);
    atomic_fetch_add(&d->metrics.stored, (uint64_t)res.inserted);
    atomic_fetch_add(&d->metrics.quarantined, (uint64_t)res.quarantined);
    atomic_fetch_add(&d->metrics.unlicensed, (uint64_t)res.unlicensed);
    atomic_fetch_add(&d->metrics.duplicates,
                     (uint64_t)(res.readings - res.inserted - res.quarantined - res.unlicensed));
    atomic_fetch_add(&d->metrics.batches, 1);
}

/* Notices a database that went away while we were idle: the server's
 * goodbye (or EOF) makes the socket readable. Costs one poll(2). */
static void check_idle_connection(struct mcs_store *s)
{
    struct pollfd p = {PQsocket(s->db.pg), POLLIN, 0};
    if(p.fd < 0 || poll(&p, 1, 0) <= 0)
        return;
    if(!PQconsumeInput(s->db.pg) || PQstatus(s->db.pg) == CONNECTION_BAD) {
        char err[256];
        snprintf(err, sizeof(err), "%s", PQerrorMessage(s->db.pg));
        char *nl = strchr(err, '\n');
        if(nl)
            *nl = '\0';
        disconnect(s, err);
    }
}

static void periodic(struct mcs_store *s)
{
    int64_t now = mcs_mono_ms();
    struct mcsd *d = s->d;

    if(s->db.pg)
        check_idle_connection(s);
    if(now >= s->next_rt_ms) {
        mirror_flush(&s->mirror, d, &s->cache, mcs_now_ms());
        s->next_rt_ms = now + 100;
    }
    if(now >= s->next_expire_ms) {
        /* R-PR-3: online while a message was received within
         * OFFLINE_AFTER_S (receive time, not the device's clock). */
        int every = d->cfg->offline_after_s * 250 < 5000 ? d->cfg->offline_after_s * 250 : 5000;
        registry_expire(&d->reg, now_s() - d->cfg->offline_after_s);
        s->next_expire_ms = now + every;
    }
    if(s->db.pg && now >= s->next_cmd_ms) {
        /* Each second: an admin waits on the page for the device's answer. */
        cmdres_flush(&d->cmdres, s->db.pg);
        s->next_cmd_ms = now + 1000;
    }
    if(s->db.pg && now >= s->next_flush_ms) {
        devstats_flush(&s->stats, &d->reg, s->db.pg);
        s->next_flush_ms = now + (int64_t)d->cfg->device_flush_s * 1000;
    }
    if(s->db.pg && now >= s->next_parts_ms)
        ensure_partitions(s);
    if(now >= s->next_metrics_ms) {
        atomic_store(&d->metrics.journal_bad_records, atomic_load(&d->journal.bad_records));
        atomic_store(&d->metrics.journal_gap_bytes, atomic_load(&d->journal.gap_bytes));
        if(cache_ready(&s->cache)) {
            struct alarm_stats as = {0};
            if(d->alarm) /* issue #2: the alarm engine's memory */
                alarm_engine_stats(d->alarm, &as);
            struct mcs_metrics_extra x = {
                registry_count(&d->reg),
                atomic_load(&d->journal.wpos) - atomic_load(&d->journal.committed), rss_kb(),
                as.dev_open, as.state_bytes, atomic_load(&d->cmdres.recorded),
                atomic_load(&d->cmdres.dropped)};
            cache_put_metrics(&s->cache, &d->metrics, &x);
            cache_flush(&s->cache);
        }
        atomic_store(&d->metrics.redis_up, s->cache.c != NULL);
        s->next_metrics_ms = now + d->cfg->metrics_interval_ms;
    }
}

static void *store_main(void *arg)
{
    struct mcs_store *s = arg;
    struct mcsd *d = s->d;
    int64_t drain_deadline = 0;

    s->db.alarm = d->alarm; /* issue #7: alarm decisions inside batch_write */
    s->db.licensed = &d->licensed; /* issue #17: not stored while locked */
    for(;;) {
        int64_t now = mcs_mono_ms();
        int64_t wpos = atomic_load(&d->journal.wpos);

        if(atomic_load(&d->ingest_done)) {
            /* Draining: without a database there is nothing to wait for —
             * the journal keeps the records for the next start. */
            if(!drain_deadline)
                drain_deadline = now + 10000;
            if(s->pos >= wpos || now >= drain_deadline || !s->db.pg || s->retry_at_ms > now)
                break;
        }
        if(!s->db.pg && now >= s->next_connect_ms)
            connect_db(s);
        periodic(s);
        if(!s->db.pg) {
            journal_wait(&d->journal, INT64_MAX, 100);
            continue;
        }
        if(now < s->retry_at_ms) {
            nap(s, s->retry_at_ms - now < 100 ? s->retry_at_ms - now : 100);
            continue;
        }
        int64_t next;
        int n = journal_read(&d->journal, s->pos, s->recs, s->max_rows, &next);
        if(n < 0) {
            LOG_E("store", "journal unreadable", LS("error", mcs_strerror(n)), LI("pos", s->pos));
            nap(s, 1000);
            continue;
        }
        if(n == 0 && next > s->pos) {
            /* Corrupt records or a torn segment skipped (counted by the
             * journal): the next committed batch carries the position. */
            s->pos = next;
            continue;
        }
        if(n == 0) {
            journal_wait(&d->journal, s->pos, 50);
            continue;
        }
        /* Linger: a young, small batch waits up to BATCH_MAX_MS for company,
         * which bounds commits per second at moderate rates. */
        int64_t age_ms = (mcs_now_us() - s->recs[0].recv_us) / 1000;
        if(n < s->max_rows && age_ms < d->cfg->batch_max_ms && !atomic_load(&d->ingest_done)) {
            mcs_sleep_ms(d->cfg->batch_max_ms - age_ms < 5 ? d->cfg->batch_max_ms - age_ms : 5);
            continue;
        }
        store_batch(s, n, next);
    }
    if(s->db.pg) {
        devstats_flush(&s->stats, &d->reg, s->db.pg);
        s->next_metrics_ms = 0;
        periodic(s);
    }
    if(s->pos < atomic_load(&d->journal.wpos))
        LOG_W("store", "stopping with readings still in the journal; they are stored at next start",
              LI("bytes", atomic_load(&d->journal.wpos) - s->pos));
    atomic_store(&s->done, 1);
    return NULL;
}

static void store_free(struct mcs_store *s)
{
    if(s->db.pg)
        PQfinish(s->db.pg);
    batch_cleanup(&s->db);
    cache_cleanup(&s->cache);
    mirror_cleanup(&s->mirror);
    devstats_cleanup(&s->stats);
    free(s->recs);
    free(s);
}

int store_start(struct mcsd *d, struct mcs_store **out)
{
    struct mcs_store *s = calloc(1, sizeof(*s));
    if(!s)
        return MCS_ENOMEM;
    s->d = d;
    s->max_rows = d->cfg->batch_max_rows;
    s->connect_backoff_ms = 500;
    s->retry_backoff_ms = 250;
    cache_init(&s->cache, d->cfg);
    s->recs = calloc((size_t)s->max_rows, sizeof(*s->recs));
    if(!s->recs || batch_init(&s->db, d->cfg->instance_id, d->journal.spool_id) ||
       mirror_init(&s->mirror, s->max_rows) || devstats_init(&s->stats) ||
       pthread_create(&s->th, NULL, store_main, s)) {
        store_free(s);
        return MCS_ENOMEM;
    }
    *out = s;
    return 0;
}

int store_join(struct mcs_store *s, int64_t deadline_ms)
{
    if(!s)
        return 0;
    journal_wake(&s->d->journal);
    while(!atomic_load(&s->done) && mcs_mono_ms() < deadline_ms)
        mcs_sleep_ms(20);
    if(!atomic_load(&s->done)) {
        LOG_W("store", "store thread did not stop in time (a statement still running); leaving it");
        return MCS_ETIMEDOUT;
    }
    pthread_join(s->th, NULL);
    store_free(s);
    return 0;
}

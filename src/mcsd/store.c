/* store.c - the store thread (see store.h). Batches are read back from the
 * journal, written with binary COPY (falling back to a staged INSERT ... ON
 * CONFLICT DO NOTHING when a batch holds a duplicate, R-PR-5), committed
 * together with the journal position (exactly once across crashes), then
 * mirrored to Redis. Owns its PGconn and Redis context. Thread: its own. */
#include "store.h"
#include "alarm_db.h" /* alarms (#7): alarm_eval_batch in try_batch */
#include "cache.h"
#include "conn.h"
#include "copybuf.h"
#include "dialect.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_MAX 5000 /* devices per statistics statement */
/* online:{sn} lives 90 s (R-PR-3); rewriting it every 15 s at most keeps it
 * alive with margin while a fast reporter costs one write, not hundreds. */
#define ONLINE_REFRESH_S 15
/* realtime:{sn} at most twice a second per device: the dashboard reads it
 * once a second, and a device in 1 s debug mode is still written every time.
 * A newer reading held back meanwhile is written when its window opens
 * (struct rt_pending), so the key always ends on the newest reading. */
#define RT_WINDOW_MS 500

/* Newest readings whose realtime write waits for its window: one entry per
 * SN (a later reading replaces an earlier one), open-addressing index. */
struct rt_pending {
    struct mcs_jrec *items;
    uint32_t n, cap;
    uint32_t *idx;      /* 1 + item index, 0 = free */
    uint32_t idx_cap;   /* power of two, > 2 × n */
};

struct mcs_store {
    struct mcsd *d;
    pthread_t th;
    PGconn *pg;
    const struct mcs_dialect *dialect;
    struct mcs_cache cache;
    struct mcs_copybuf copy;
    struct mcs_jrec *recs;
    struct rt_pending rt;
    uint32_t *newest;      /* per batch: open-addressing sn → index of its newest reading */
    uint32_t newest_cap;   /* power of two, >= 2 × max_rows */
    uint32_t *used;        /* the slots of s->newest in use, so that a batch costs */
    uint32_t nused;        /* its size, not the table's */
    struct mcs_device_stat *stats;
    int max_rows;
    int64_t pos;           /* journal position stored so far */
    int64_t next_rt_ms;
    unsigned cache_gen;    /* cache generation the registry's key times refer to */
    int64_t next_connect_ms, next_metrics_ms, next_flush_ms, next_parts_ms, next_expire_ms;
    int connect_backoff_ms;
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

static void disconnect(struct mcs_store *s, const char *why)
{
    if(s->pg) {
        LOG_W("store", "database connection lost", LS("error", why));
        PQfinish(s->pg);
    }
    s->pg = NULL;
    atomic_store(&s->d->metrics.db_up, 0);
    s->next_connect_ms = mcs_mono_ms() + s->connect_backoff_ms;
    if(s->connect_backoff_ms < 5000)
        s->connect_backoff_ms *= 2;
}

/* Returns 1 when the connection is gone (as opposed to a statement error). */
static int conn_lost(struct mcs_store *s)
{
    return PQstatus(s->pg) == CONNECTION_BAD;
}

static int ensure_partitions(struct mcs_store *s)
{
    int64_t today = now_s() / 86400;
    int rc = s->dialect->ensure_days(s->pg, today - s->d->cfg->data_retention_days - 1, today + 2);
    s->next_parts_ms = mcs_mono_ms() + (rc ? 60000 : 3600000);
    return rc;
}

static int connect_db(struct mcs_store *s)
{
    char err[512];
    PGresult *r;
    const char *params[1] = {s->d->cfg->instance_id};

    s->pg = mcs_pg_connect(s->d->cfg, "mcsd-store", err, sizeof(err));
    if(!s->pg) {
        disconnect(s, err);
        return MCS_EDB;
    }
    s->dialect = dialect_detect(s->pg);
    if(mcs_pg_exec(s->pg,
                   "CREATE TEMP TABLE IF NOT EXISTS mcs_stage (LIKE sensor_data) "
                   "ON COMMIT DELETE ROWS",
                   err, sizeof(err))) {
        disconnect(s, err);
        return MCS_EDB;
    }
    ensure_partitions(s);
    r = PQexecParams(s->pg, "SELECT \"offset\" FROM ingest_checkpoint WHERE instance = $1", 1,
                     NULL, params, NULL, NULL, 0);
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
        PQclear(r);
        disconnect(s, err);
        return MCS_EDB;
    }
    {
        int64_t oldest = journal_oldest(&s->d->journal);
        int64_t wpos = atomic_load(&s->d->journal.wpos);
        int64_t ck = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : oldest;
        if(ck < oldest || ck > wpos) {
            /* The spool directory was replaced or cleaned: replay what is on
             * disk; the unique index drops anything already stored. */
            LOG_W("store", "journal checkpoint outside the spool; replaying the spool",
                  LI("checkpoint", ck), LI("oldest", oldest), LI("end", wpos));
            ck = oldest;
        }
        s->pos = ck;
        journal_commit(&s->d->journal, ck);
    }
    PQclear(r);
    s->connect_backoff_ms = 500;
    atomic_store(&s->d->metrics.db_up, 1);
    LOG_I("store", "database connected", LS("dialect", s->dialect->name), LI("journal_pos", s->pos));
    return 0;
}

/* Sends the prepared COPY buffer into table. Returns rows or -1. */
static int copy_into(struct mcs_store *s, const char *table, char *err, size_t errn)
{
    char sql[160];
    PGresult *r;
    int ok;

    snprintf(sql, sizeof(sql), "COPY %s (" MCS_COPY_COLUMNS ") FROM STDIN (FORMAT binary)", table);
    r = PQexec(s->pg, sql);
    ok = PQresultStatus(r) == PGRES_COPY_IN;
    if(!ok)
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
    PQclear(r);
    if(!ok)
        return -1;
    if(PQputCopyData(s->pg, (const char *)s->copy.data, (int)s->copy.len) != 1 ||
       PQputCopyEnd(s->pg, NULL) != 1) {
        snprintf(err, errn, "%s", PQerrorMessage(s->pg));
        return -1;
    }
    int rows = -1;
    while((r = PQgetResult(s->pg))) {
        if(PQresultStatus(r) == PGRES_COMMAND_OK)
            rows = (int)strtol(PQcmdTuples(r), NULL, 10);
        else {
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(err, errn, "%s%s", st ? st : "", PQresultErrorMessage(r));
            rows = -1;
        }
        PQclear(r);
    }
    return rows;
}

static int exec_ok(struct mcs_store *s, const char *sql, char *err, size_t errn)
{
    return mcs_pg_exec(s->pg, sql, err, errn);
}

static int write_checkpoint(struct mcs_store *s, int64_t next, char *err, size_t errn)
{
    char pos[24];
    const char *params[2] = {s->d->cfg->instance_id, pos};
    snprintf(pos, sizeof(pos), "%" PRId64, next);
    PGresult *r = PQexecParams(s->pg,
                               "INSERT INTO ingest_checkpoint (instance, segment, \"offset\") "
                               "VALUES ($1, 0, $2) ON CONFLICT (instance) DO UPDATE "
                               "SET \"offset\" = EXCLUDED.\"offset\", updated_at = now()",
                               2, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : MCS_EDB;
    if(rc)
        snprintf(err, errn, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static int write_statuses(struct mcs_store *s, int n, char *err, size_t errn)
{
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &s->recs[i];
        char sn[MCS_SN_MAX + 1];
        if(r->type != MCS_JREC_STATUS)
            continue;
        jrec_sn(r, sn);
        const char *params[2] = {sn, r->online ? "online" : "offline"};
        PGresult *res = PQexecParams(s->pg, "UPDATE devices SET status = $2 WHERE sn = $1", 2,
                                     NULL, params, NULL, NULL, 0);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if(!ok)
            snprintf(err, errn, "%s", PQresultErrorMessage(res));
        PQclear(res);
        if(!ok)
            return MCS_EDB;
    }
    return 0;
}

/* One attempt at a batch in one transaction. staged: go through mcs_stage with
 * ON CONFLICT DO NOTHING. Returns rows inserted, or -1 (err set). */
static int try_batch(struct mcs_store *s, int n, int64_t next, int staged, char *err, size_t errn)
{
    int inserted = 0;
    char e2[128];

    if(exec_ok(s, "BEGIN", err, errn))
        return -1;
    if(s->copy.rows) {
        if(!staged) {
            inserted = copy_into(s, "sensor_data", err, errn);
            if(inserted < 0)
                goto fail;
        }
        else {
            if(copy_into(s, "mcs_stage", err, errn) < 0)
                goto fail;
            PGresult *r = PQexec(s->pg, "INSERT INTO sensor_data (" MCS_COPY_COLUMNS ") SELECT "
                                        MCS_COPY_COLUMNS " FROM mcs_stage ON CONFLICT DO NOTHING");
            if(PQresultStatus(r) != PGRES_COMMAND_OK) {
                snprintf(err, errn, "%s", PQresultErrorMessage(r));
                PQclear(r);
                goto fail;
            }
            inserted = (int)strtol(PQcmdTuples(r), NULL, 10);
            PQclear(r);
        }
    }
    if(write_statuses(s, n, err, errn) ||
       /* alarms (#7): decided in this transaction, in journal order */
       alarm_eval_batch(s->d->alarm, s->pg, s->recs, (size_t)n, err, errn) ||
       write_checkpoint(s, next, err, errn) ||
       exec_ok(s, "COMMIT", err, errn))
        goto fail;
    return inserted;
fail:
    if(!conn_lost(s))
        exec_ok(s, "ROLLBACK", e2, sizeof(e2));
    return -1;
}

static uint32_t hash_sn32(const char sn[MCS_SN_MAX])
{
    uint32_t h = 2166136261u;
    for(int i = 0; i < MCS_SN_MAX && sn[i]; i++) {
        h ^= (unsigned char)sn[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t *rt_find(struct rt_pending *p, const char sn[MCS_SN_MAX])
{
    uint32_t mask = p->idx_cap - 1;
    if(!p->idx_cap)
        return NULL;
    for(uint32_t h = hash_sn32(sn) & mask;; h = (h + 1) & mask) {
        if(!p->idx[h] || !memcmp(p->items[p->idx[h] - 1].sn, sn, MCS_SN_MAX))
            return &p->idx[h];
    }
}

static int rt_reindex(struct rt_pending *p, uint32_t want)
{
    uint32_t cap = p->idx_cap ? p->idx_cap : 1024;
    while(cap <= 2 * want)
        cap *= 2;
    if(cap != p->idx_cap) {
        uint32_t *ni = calloc(cap, sizeof(*ni));
        if(!ni)
            return MCS_ENOMEM;
        free(p->idx);
        p->idx = ni;
        p->idx_cap = cap;
    }
    else
        memset(p->idx, 0, cap * sizeof(*p->idx));
    for(uint32_t i = 0; i < p->n; i++)
        *rt_find(p, p->items[i].sn) = i + 1;
    return 0;
}

/* Holds r back until its device's window opens. On allocation failure the
 * write is dropped (the next reading of the device writes the key). */
static void rt_put(struct rt_pending *p, const struct mcs_jrec *r)
{
    uint32_t *slot = rt_find(p, r->sn);
    if(slot && *slot) {
        p->items[*slot - 1] = *r;
        return;
    }
    if(p->n == p->cap) {
        uint32_t ncap = p->cap ? p->cap * 2 : 256;
        struct mcs_jrec *ni = realloc(p->items, ncap * sizeof(*ni));
        if(!ni)
            return;
        p->items = ni;
        p->cap = ncap;
    }
    p->items[p->n++] = *r;
    if(2 * p->n >= p->idx_cap) {
        if(rt_reindex(p, p->n))
            p->n--;
        return;
    }
    *rt_find(p, r->sn) = p->n;
}

/* A newer value was just written directly: forget the held one. */
static void rt_drop(struct rt_pending *p, const char sn[MCS_SN_MAX])
{
    uint32_t *slot = rt_find(p, sn);
    if(slot && *slot)
        p->items[*slot - 1].sn[0] = '\0'; /* tombstone: skipped and removed at flush */
}

/* Writes the held readings whose window has opened. */
static void rt_flush(struct mcs_store *s, int64_t now_ms)
{
    struct rt_pending *p = &s->rt;
    uint32_t keep = 0;
    if(!p->n || !cache_ready(&s->cache))
        return;
    for(uint32_t i = 0; i < p->n; i++) {
        const struct mcs_jrec *r = &p->items[i];
        char sn[MCS_SN_MAX + 1];
        if(!r->sn[0])
            continue;
        jrec_sn(r, sn);
        if(registry_rt_take(&s->d->reg, sn, now_ms, RT_WINDOW_MS))
            cache_put_reading(&s->cache, r, 1, 0, r->ts);
        else
            p->items[keep++] = *r;
    }
    p->n = keep;
    rt_reindex(p, p->n);
    cache_send(&s->cache);
}

/* The s->newest slot of sn (0 inside when the batch has no reading of it). */
static const uint32_t *newest_slot(const struct mcs_store *s, const char sn[MCS_SN_MAX])
{
    uint32_t mask = s->newest_cap - 1;
    for(uint32_t h = hash_sn32(sn) & mask;; h = (h + 1) & mask)
        if(!s->newest[h] || !memcmp(s->recs[s->newest[h] - 1].sn, sn, MCS_SN_MAX))
            return &s->newest[h];
}

/* Fills s->newest with, for each SN of the batch, 1 + the index of its
 * reading with the greatest ts (the last such on ties); 0 marks a free slot. */
static void index_newest(struct mcs_store *s, int n)
{
    uint32_t mask = s->newest_cap - 1;
    for(uint32_t u = 0; u < s->nused; u++)
        s->newest[s->used[u]] = 0;
    s->nused = 0;
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &s->recs[i];
        if(r->type != MCS_JREC_READING)
            continue;
        for(uint32_t h = hash_sn32(r->sn) & mask;; h = (h + 1) & mask) {
            uint32_t v = s->newest[h];
            if(!v) {
                s->newest[h] = (uint32_t)i + 1;
                s->used[s->nused++] = h;
                break;
            }
            if(!memcmp(s->recs[v - 1].sn, r->sn, MCS_SN_MAX)) {
                if(r->ts >= s->recs[v - 1].ts)
                    s->newest[h] = (uint32_t)i + 1;
                break;
            }
        }
    }
}

/* After commit: registry, Redis (one realtime write per device per batch,
 * replies read at the next batch so Redis works while PostgreSQL does),
 * metrics. */
static void after_commit(struct mcs_store *s, int n, int inserted)
{
    struct mcsd *d = s->d;
    int64_t now = mcs_now_us();
    int readings = 0;
    int redis = cache_ready(&s->cache);

    if(redis)
        redis = cache_collect(&s->cache) == 0;
    if(redis && s->cache.generation != s->cache_gen) {
        /* A new Redis connection may be a restarted, empty Redis: write the
         * keys again instead of waiting for their refresh intervals. */
        registry_forget_keys(&d->reg);
        s->cache_gen = s->cache.generation;
    }
    index_newest(s, n);
    for(uint32_t u = 0; u < s->nused; u++) {
        const struct mcs_jrec *r = &s->recs[s->newest[s->used[u]] - 1];
        char sn[MCS_SN_MAX + 1];
        jrec_sn(r, sn);
        int seen = registry_mark_seen(&d->reg, sn, r->ts, now / 1000, ONLINE_REFRESH_S,
                                      RT_WINDOW_MS);
        if(seen & MCS_SEEN_NEWEST)
            rt_drop(&s->rt, r->sn);
        else if(seen & MCS_SEEN_DEFER)
            rt_put(&s->rt, r);
        if(redis && (seen & (MCS_SEEN_NEWEST | MCS_SEEN_ONLINE)))
            cache_put_reading(&s->cache, r, seen & MCS_SEEN_NEWEST, seen & MCS_SEEN_ONLINE, r->ts);
    }
    /* Status records in journal order. One that came before the device's
     * newest reading of this batch is already superseded (the device
     * reconnected and reported): only a later one changes its state. */
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &s->recs[i];
        if(r->type == MCS_JREC_READING) {
            readings++;
            if(r->trace_us)
                metrics_latency(&d->metrics, now - r->trace_us);
            continue;
        }
        const uint32_t *nw = newest_slot(s, r->sn);
        if(nw && *nw && *nw - 1 > (uint32_t)i)
            continue;
        char sn[MCS_SN_MAX + 1];
        jrec_sn(r, sn);
        registry_mark_status(&d->reg, sn, r->online);
        if(redis && !r->online)
            cache_put_offline(&s->cache, sn);
    }
    if(redis)
        cache_send(&s->cache);
    atomic_fetch_add(&d->metrics.stored, (uint64_t)inserted);
    atomic_fetch_add(&d->metrics.duplicates, (uint64_t)(readings - inserted));
    atomic_fetch_add(&d->metrics.batches, 1);
}

/* Stores recs[0..n) ending at journal position next. Returns 0, or MCS_EDB
 * when the connection was lost (nothing advanced: the batch is retried). */
static int store_batch(struct mcs_store *s, int n, int64_t next)
{
    char err[1024];
    int inserted, readings = 0;

    copybuf_reset(&s->copy);
    for(int i = 0; i < n; i++)
        if(s->recs[i].type == MCS_JREC_READING) {
            readings++;
            if(copybuf_add(&s->copy, &s->recs[i])) {
                LOG_E("store", "COPY buffer limit reached");
                return MCS_ETOOBIG;
            }
        }
    copybuf_finish(&s->copy);

    inserted = try_batch(s, n, next, 0, err, sizeof(err));
    if(inserted < 0 && !conn_lost(s)) {
        /* 23505: a duplicate (sn, time, seq): resend or redelivery. Anything
         * else: make sure partitions exist, then the same staged path. */
        if(strncmp(err, "23505", 5) != 0) {
            LOG_W("store", "batch failed, retrying staged", LS("error", err));
            ensure_partitions(s);
        }
        inserted = try_batch(s, n, next, 1, err, sizeof(err));
    }
    if(inserted < 0 && conn_lost(s)) {
        disconnect(s, err);
        return MCS_EDB;
    }
    if(inserted < 0) {
        /* A batch the database refuses twice for its content would stop the
         * pipeline forever; it is skipped, counted and logged loudly. */
        LOG_E("store", "batch refused by the database; skipped", LS("error", err),
              LI("rows", readings));
        atomic_fetch_add(&s->d->metrics.store_failed, (uint64_t)readings);
        char e2[256];
        if(exec_ok(s, "BEGIN", e2, sizeof(e2)) == 0 &&
           (write_checkpoint(s, next, e2, sizeof(e2)) || exec_ok(s, "COMMIT", e2, sizeof(e2)))) {
            exec_ok(s, "ROLLBACK", e2, sizeof(e2));
            return MCS_EDB;
        }
        s->pos = next;
        journal_commit(&s->d->journal, next);
        return 0;
    }
    s->pos = next;
    journal_commit(&s->d->journal, next);
    after_commit(s, n, inserted);
    return 0;
}

/* Appends a PostgreSQL array element (our values never need quoting: SNs and
 * versions are validated to [A-Za-z0-9._+-]). */
static void arr_add(char **buf, size_t *len, size_t *cap, const char *v, int first)
{
    size_t vl = strlen(v);
    if(*len + vl + 3 > *cap) {
        size_t nc = (*cap + vl + 3) * 2;
        char *nb = realloc(*buf, nc);
        if(!nb)
            return;
        *buf = nb;
        *cap = nc;
    }
    if(first)
        (*buf)[(*len)++] = '{';
    else
        (*buf)[(*len)++] = ',';
    memcpy(*buf + *len, v, vl);
    *len += vl;
    (*buf)[*len] = '\0';
}

static void flush_device_stats(struct mcs_store *s)
{
    enum { NA = 9 };
    char *a[NA] = {0};
    size_t len[NA] = {0}, cap[NA] = {0};
    uint32_t n = registry_take_dirty(&s->d->reg, s->stats, FLUSH_MAX);
    char v[32];

    if(!n)
        return;
    for(uint32_t i = 0; i < n; i++) {
        const struct mcs_device_stat *st = &s->stats[i];
        int f = i == 0;
        arr_add(&a[0], &len[0], &cap[0], st->sn, f);
        arr_add(&a[1], &len[1], &cap[1], st->online ? "online" : "offline", f);
        snprintf(v, sizeof(v), "%lld", (long long)st->last_seen);
        arr_add(&a[2], &len[2], &cap[2], v, f);
        snprintf(v, sizeof(v), "%u", st->recv_delta);
        arr_add(&a[3], &len[3], &cap[3], v, f);
        snprintf(v, sizeof(v), "%u", st->lost_delta);
        arr_add(&a[4], &len[4], &cap[4], v, f);
        if(st->bat == MCS_ABSENT_INT)
            snprintf(v, sizeof(v), "NULL");
        else
            snprintf(v, sizeof(v), "%d", st->bat);
        arr_add(&a[5], &len[5], &cap[5], v, f);
        if(st->rssi == MCS_ABSENT_INT)
            snprintf(v, sizeof(v), "NULL");
        else
            snprintf(v, sizeof(v), "%d", st->rssi);
        arr_add(&a[6], &len[6], &cap[6], v, f);
        arr_add(&a[7], &len[7], &cap[7], st->ver[0] ? st->ver : "NULL", f);
        snprintf(v, sizeof(v), "%d", st->err);
        arr_add(&a[8], &len[8], &cap[8], v, f);
    }
    int oom = 0;
    for(int k = 0; k < NA; k++) {
        if(!a[k] || len[k] + 2 > cap[k]) {
            oom = 1;
            continue;
        }
        a[k][len[k]++] = '}';
        a[k][len[k]] = '\0';
    }
    if(!oom) {
        const char *params[NA] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]};
        PGresult *r = PQexecParams(
            s->pg,
            "UPDATE devices d SET status = v.status,"
            " last_seen = COALESCE(to_timestamp(NULLIF(v.last_seen, 0)), d.last_seen),"
            " pkt_recv = d.pkt_recv + v.recv, pkt_lost = d.pkt_lost + v.lost,"
            " bat = COALESCE(v.bat, d.bat), rssi = COALESCE(v.rssi, d.rssi),"
            " fw_ver = COALESCE(v.ver, d.fw_ver), last_err = v.err "
            "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],"
            " $6::int[], $7::int[], $8::text[], $9::int[])"
            " AS v(sn, status, last_seen, recv, lost, bat, rssi, ver, err) WHERE d.sn = v.sn",
            NA, NULL, params, NULL, NULL, 0);
        if(PQresultStatus(r) != PGRES_COMMAND_OK) {
            LOG_W("store", "device statistics not written", LS("error", PQresultErrorMessage(r)));
            oom = 1;
        }
        PQclear(r);
    }
    if(oom)
        registry_stats_restore(&s->d->reg, s->stats, n);
    for(int k = 0; k < NA; k++)
        free(a[k]);
}

/* Notices a database that went away while we were idle: the server's
 * goodbye (or EOF) makes the socket readable. Costs one poll(2). */
static void check_idle_connection(struct mcs_store *s)
{
    struct pollfd p = {PQsocket(s->pg), POLLIN, 0};
    if(p.fd < 0 || poll(&p, 1, 0) <= 0)
        return;
    if(!PQconsumeInput(s->pg) || PQstatus(s->pg) == CONNECTION_BAD) {
        char err[256];
        snprintf(err, sizeof(err), "%s", PQerrorMessage(s->pg));
        char *nl = strchr(err, '\n');
        if(nl)
            *nl = '\0';
        disconnect(s, err);
        return;
    }
}

static void periodic(struct mcs_store *s)
{
    int64_t now = mcs_mono_ms();
    struct mcsd *d = s->d;

    if(s->pg)
        check_idle_connection(s);
    if(now >= s->next_rt_ms) {
        rt_flush(s, mcs_now_ms());
        s->next_rt_ms = now + 100;
    }

    if(now >= s->next_expire_ms) {
        /* R-PR-3: online while reported within 90 s. */
        registry_expire(&d->reg, now_s() - 90);
        s->next_expire_ms = now + 5000;
    }
    if(s->pg && now >= s->next_flush_ms) {
        flush_device_stats(s);
        s->next_flush_ms = now + (int64_t)d->cfg->device_flush_s * 1000;
    }
    if(s->pg && now >= s->next_parts_ms)
        ensure_partitions(s);
    if(now >= s->next_metrics_ms) {
        if(cache_ready(&s->cache)) {
            struct mcs_metrics_extra x = {
                registry_count(&d->reg),
                atomic_load(&d->journal.wpos) - atomic_load(&d->journal.committed), rss_kb()};
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

    for(;;) {
        int64_t now = mcs_mono_ms();
        int64_t wpos = atomic_load(&d->journal.wpos);

        if(atomic_load(&d->ingest_done)) {
            if(!drain_deadline)
                drain_deadline = now + 10000;
            if(s->pos >= wpos || now >= drain_deadline)
                break;
        }
        if(!s->pg && now >= s->next_connect_ms)
            connect_db(s);
        periodic(s);
        if(!s->pg) {
            journal_wait(&d->journal, INT64_MAX, 100);
            continue;
        }
        int64_t next;
        int n = journal_read(&d->journal, s->pos, s->recs, s->max_rows, &next);
        if(n < 0) {
            LOG_E("store", "journal unreadable", LS("error", mcs_strerror(n)), LI("pos", s->pos));
            mcs_sleep_ms(1000);
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
    if(s->pg) {
        flush_device_stats(s);
        s->next_metrics_ms = 0;
        periodic(s);
    }
    if(s->pos < atomic_load(&d->journal.wpos))
        LOG_W("store", "stopping with readings still in the journal; they are stored at next start",
              LI("bytes", atomic_load(&d->journal.wpos) - s->pos));
    return NULL;
}

int store_start(struct mcsd *d, struct mcs_store **out)
{
    struct mcs_store *s = calloc(1, sizeof(*s));
    if(!s)
        return MCS_ENOMEM;
    s->d = d;
    s->max_rows = d->cfg->batch_max_rows;
    s->connect_backoff_ms = 500;
    cache_init(&s->cache, d->cfg);
    s->recs = calloc((size_t)s->max_rows, sizeof(*s->recs));
    s->stats = calloc(FLUSH_MAX, sizeof(*s->stats));
    for(s->newest_cap = 16; s->newest_cap < 2 * (uint32_t)s->max_rows; s->newest_cap *= 2) {
    }
    s->newest = calloc(s->newest_cap, sizeof(*s->newest));
    s->used = calloc((size_t)s->max_rows, sizeof(*s->used));
    if(!s->recs || !s->stats || !s->newest || !s->used || copybuf_init(&s->copy, 256u << 20)) {
        free(s->newest);
        free(s->used);
        free(s->recs);
        free(s->stats);
        free(s);
        return MCS_ENOMEM;
    }
    if(pthread_create(&s->th, NULL, store_main, s)) {
        free(s->newest);
        free(s->used);
        copybuf_cleanup(&s->copy);
        free(s->recs);
        free(s->stats);
        free(s);
        return MCS_ENOMEM;
    }
    *out = s;
    return 0;
}

void store_join(struct mcs_store *s)
{
    if(!s)
        return;
    journal_wake(&s->d->journal);
    pthread_join(s->th, NULL);
    if(s->pg)
        PQfinish(s->pg);
    cache_cleanup(&s->cache);
    copybuf_cleanup(&s->copy);
    free(s->recs);
    free(s->stats);
    free(s->newest);
    free(s->used);
    free(s->rt.items);
    free(s->rt.idx);
    free(s);
}

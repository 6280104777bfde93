/* authsync.c - the mcs_auth plugin's sync thread: keeps the device table
 * current from PostgreSQL (full load, then LISTEN mcs_device and re-read of
 * the notified SNs, full reload after every reconnect and periodically),
 * queues kicks of devices that became disabled or were deleted, writes the
 * rate-limited UNKNOWN_DEVICE alarms (R-MQ-7), publishes the counters to
 * Redis hash mcs:metrics:broker and keeps the registry snapshot file.
 * Owns its PostgreSQL and Redis connections, the alarm limiter, the
 * pending-kick list and its own counters. Must not call any broker function
 * (mosquitto_*) nor anything of mcs_auth.c: the broker is not thread-safe;
 * it talks to the broker's thread only through the mailboxes of struct
 * authsync_link (authsync.h, items in authmsg.h).
 * Thread: its own (signals blocked), except authsync_start/stop. */
#include "authsync.h"
#include "conn.h"
#include "devcred.h"
#include "err.h"
#include "timeutil.h"

#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_MS 100
#define DB_RETRY_MS 2000
#define REDIS_RETRY_MS 2000
#define SNAPSHOT_DEBOUNCE_MS 5000
#define BATCH_MAX 256 /* notified SNs re-read in one query */
#define ALARM_WRITES_PER_LOOP 20
#define ALARM_FLUSH_MS 1000 /* alarm writes at most once a second */
#define SNAPSHOT_MAX_ENTRIES 10000000
#define METRICS_KEY "mcs:metrics:broker"

struct sync_counters {
#define SYNC_CTR_FIELD(name) uint64_t name;
    AUTH_SYNC_COUNTERS(SYNC_CTR_FIELD)
#undef SYNC_CTR_FIELD
};

struct authsync {
    struct authsync_link l;
    pthread_t th;
    int started;
    atomic_int stopping; /* set by authsync_stop */
    int db_up, redis_up;
    int reload_requested;      /* from an auth_ctl message */
    struct sync_counters ctr;  /* this thread's own */
    struct auth_counters bctr; /* the broker's, as of its latest auth_ctl */
    PGconn *pg;
    redisContext *rds;
    int64_t next_db_try_ms, next_redis_try_ms, next_metrics_ms, next_full_ms, next_snap_ms;
    int64_t next_alarm_ms;
    int snap_dirty;
    int db_logged_down; /* the "database down" line was written for this outage */
    struct alarmlim lim;
    struct auth_kick *kq; /* kicks not yet in the mailbox: kq[kq_head..kq_n) */
    size_t kq_head, kq_n, kq_cap;
    char notified[BATCH_MAX][DEVTAB_SN_MAX + 1];
    size_t nn;
    int notified_overflow; /* more than BATCH_MAX: do a full reload instead */
};

/* Queues a log line for the broker's thread; dropped (and counted by the
 * mailbox as log_dropped) when it is full. */
__attribute__((format(printf, 3, 4))) static void log_queued(struct authsync *s, int level,
                                                             const char *fmt, ...)
{
    struct auth_logline l;
    va_list ap;

    memset(&l, 0, sizeof(l));
    l.level = level;
    va_start(ap, fmt);
    vsnprintf(l.text, sizeof(l.text), fmt, ap);
    va_end(ap);
    mbox_put(s->l.logs, &l);
}

/* Length of the first line of a (libpq) message, at most 200 bytes. */
static int first_line(const char *m)
{
    size_t n = strcspn(m, "\n");
    return (int)(n > 200 ? 200 : n);
}

/* --- kicks ------------------------------------------------------------- */

static void kick_add(struct authsync *s, const char *sn)
{
    if(s->kq_n == s->kq_cap) {
        size_t ncap = s->kq_cap ? s->kq_cap * 2 : 64;
        struct auth_kick *n;
        if(s->kq_head > 0) {
            /* Compact first: the consumed head is free space. */
            memmove(s->kq, s->kq + s->kq_head, (s->kq_n - s->kq_head) * sizeof(*s->kq));
            s->kq_n -= s->kq_head;
            s->kq_head = 0;
        }
        if(s->kq_n == s->kq_cap) {
            n = realloc(s->kq, ncap * sizeof(*n));
            if(!n) {
                /* The ACL check refuses every publish and subscription of
                 * a disabled device anyway; the kick only hurries it out. */
                log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: out of memory queueing a kick");
                return;
            }
            s->kq = n;
            s->kq_cap = ncap;
        }
    }
    snprintf(s->kq[s->kq_n].username, sizeof(s->kq[s->kq_n].username), "%s%s",
             AUTHZ_DEVICE_USER_PREFIX, sn);
    s->kq_n++;
}

static void kick_flush(struct authsync *s)
{
    while(s->kq_head < s->kq_n && mbox_put(s->l.kicks, &s->kq[s->kq_head]) == 0)
        s->kq_head++;
    if(s->kq_head == s->kq_n)
        s->kq_head = s->kq_n = 0;
}

/* --- registry ------------------------------------------------------------ */

struct diff_ctx {
    struct authsync *s;
    const struct devtab_map *now;
};

/* For each device enabled before a full reload: kick it unless still enabled. */
static void diff_one(void *arg, const char *sn, enum devtab_state st)
{
    struct diff_ctx *d = arg;
    if(st == DEVTAB_ENABLED && devtab_map_get(d->now, sn, strlen(sn)) != DEVTAB_ENABLED)
        kick_add(d->s, sn);
}

static void db_drop(struct authsync *s, const char *why)
{
    if(s->pg) {
        log_queued(s, MOSQ_LOG_WARNING,
                   "mcs_auth: database connection lost (%.*s); known devices keep working, "
                   "unknown ones are refused until it is back",
                   first_line(why), why);
        PQfinish(s->pg);
        s->pg = NULL;
        s->db_logged_down = 1;
    }
    s->db_up = 0;
    s->next_db_try_ms = mcs_mono_ms() + DB_RETRY_MS;
}

/* Reads every device into a new table and installs it. Returns 0 or MCS_EDB. */
static int full_load(struct authsync *s)
{
    PGresult *r = PQexec(s->pg, "SELECT sn, enabled FROM devices");
    struct devtab_map *m = NULL, *old;
    struct diff_ctx d;
    int rc = MCS_EDB, n, loaded_before;

    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        /* Once per outage: a database without the schema yet would
         * otherwise write this line every retry. */
        if(!s->db_logged_down)
            log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: registry load failed: %.*s",
                       first_line(PQresultErrorMessage(r)), PQresultErrorMessage(r));
        s->db_logged_down = 1;
        goto out;
    }
    n = PQntuples(r);
    m = devtab_map_new((size_t)n);
    if(!m) {
        rc = MCS_ENOMEM;
        goto out;
    }
    for(int i = 0; i < n; i++) {
        const char *sn = PQgetvalue(r, i, 0), *en = PQgetvalue(r, i, 1);
        int prc = devtab_map_put(&m, sn, en[0] == 't' ? DEVTAB_ENABLED : DEVTAB_DISABLED, NULL);
        if(prc == MCS_ENOMEM) {
            rc = prc;
            goto out;
        }
    }
    loaded_before = devtab_loaded(s->l.devs);
    old = devtab_replace(s->l.devs, m, 1);
    if(loaded_before) {
        d.s = s;
        d.now = m;
        devtab_map_each(old, diff_one, &d);
    }
    m = NULL;
    devtab_map_free(old);
    s->ctr.registry_full_loads++;
    s->snap_dirty = 1;
    s->next_snap_ms = 0; /* a full load is worth saving at once */
    s->next_full_ms = mcs_mono_ms() + (int64_t)s->l.opt->full_reload_s * 1000;
    log_queued(s, MOSQ_LOG_NOTICE, "mcs_auth: registry loaded: %d devices", n);
    rc = 0;
out:
    devtab_map_free(m);
    PQclear(r);
    return rc;
}

/* Connects, LISTENs (before loading, so that a change committed during the
 * load is delivered afterwards instead of lost) and loads. */
static int db_open(struct authsync *s)
{
    char err[512];

    s->pg = mcs_pg_connect(&s->l.opt->cfg, "mcs_auth", err, sizeof(err));
    if(!s->pg) {
        if(!s->db_logged_down)
            log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: database unavailable: %.*s", first_line(err),
                       err);
        s->db_logged_down = 1;
        s->next_db_try_ms = mcs_mono_ms() + DB_RETRY_MS;
        return MCS_EDB;
    }
    /* No statement may hold the sync thread (and with it the broker's
     * shutdown, which joins it) for long. */
    if(mcs_pg_exec(s->pg, "SET statement_timeout = 10000", err, sizeof(err)) ||
       mcs_pg_exec(s->pg, "LISTEN mcs_device", err, sizeof(err)) || full_load(s)) {
        PQfinish(s->pg);
        s->pg = NULL;
        s->next_db_try_ms = mcs_mono_ms() + DB_RETRY_MS;
        return MCS_EDB;
    }
    s->nn = 0;
    s->notified_overflow = 0;
    if(s->db_logged_down)
        log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: database connection restored");
    s->db_logged_down = 0;
    s->db_up = 1;
    return 0;
}

static void collect_notifies(struct authsync *s)
{
    PGnotify *n;
    while((n = PQnotifies(s->pg))) {
        size_t len = strnlen(n->extra, DEVTAB_SN_MAX + 1);
        if(mcs_sn_valid(n->extra, len)) {
            if(s->nn < BATCH_MAX) {
                memcpy(s->notified[s->nn], n->extra, len + 1);
                s->nn++;
            }
            else {
                s->notified_overflow = 1;
            }
        }
        PQfreemem(n);
    }
}

/* Re-reads the notified SNs with one query and applies the changes. */
static int reload_notified(struct authsync *s)
{
    char arr[BATCH_MAX * (DEVTAB_SN_MAX + 1) + 3];
    const char *params[1] = {arr};
    size_t o = 0;
    PGresult *r = NULL;
    int rc = MCS_EDB;
    unsigned char seen[BATCH_MAX];

    /* SNs are [A-Za-z0-9_-]: an array literal needs no quoting. */
    arr[o++] = '{';
    for(size_t i = 0; i < s->nn; i++) {
        size_t len = strlen(s->notified[i]);
        if(i)
            arr[o++] = ',';
        memcpy(arr + o, s->notified[i], len);
        o += len;
    }
    arr[o++] = '}';
    arr[o] = '\0';
    r = PQexecParams(s->pg, "SELECT sn, enabled FROM devices WHERE sn = ANY($1::text[])", 1, NULL,
                     params, NULL, NULL, 0);
    if(PQresultStatus(r) != PGRES_TUPLES_OK)
        goto out;
    memset(seen, 0, sizeof(seen));
    for(int row = 0; row < PQntuples(r); row++) {
        const char *sn = PQgetvalue(r, row, 0);
        enum devtab_state st = PQgetvalue(r, row, 1)[0] == 't' ? DEVTAB_ENABLED : DEVTAB_DISABLED;
        enum devtab_state prev;
        for(size_t i = 0; i < s->nn; i++)
            if(!strcmp(s->notified[i], sn))
                seen[i] = 1;
        if(devtab_set(s->l.devs, sn, st, &prev) == 0 && prev == DEVTAB_ENABLED &&
           st != DEVTAB_ENABLED)
            kick_add(s, sn);
    }
    for(size_t i = 0; i < s->nn; i++) {
        enum devtab_state prev;
        if(seen[i])
            continue; /* deleted (or renamed away) */
        if(devtab_set(s->l.devs, s->notified[i], DEVTAB_UNKNOWN, &prev) == 0 &&
           prev == DEVTAB_ENABLED)
            kick_add(s, s->notified[i]);
    }
    s->ctr.registry_updates += s->nn;
    s->snap_dirty = 1;
    rc = 0;
out:
    PQclear(r);
    return rc;
}

/* --- alarms (R-MQ-7) ---------------------------------------------------------- */

static const char *const RAISE_SQL =
    "WITH prev AS (SELECT id FROM alarm_logs WHERE sn = $1 AND alarm_type = 'UNKNOWN_DEVICE'"
    "  AND triggered_at > now() - make_interval(secs => $3::int)"
    "  ORDER BY triggered_at DESC LIMIT 1),"
    " upd AS (UPDATE alarm_logs SET count = count + $2::int"
    "  WHERE id IN (SELECT id FROM prev) RETURNING id),"
    " ins AS (INSERT INTO alarm_logs (sn, alarm_type, message, count)"
    "  SELECT $1, 'UNKNOWN_DEVICE', $4, $2::int WHERE NOT EXISTS (SELECT 1 FROM prev)"
    "  RETURNING id)"
    " SELECT id, 0 FROM upd UNION ALL SELECT id, 1 FROM ins";

/* Performs one alarm write; returns the alarm id or 0 on failure. */
static int64_t alarm_write(struct authsync *s, const struct alarmlim_work *w)
{
    char count[16], window[16], id[24], msg[256];
    const char *p[4];
    PGresult *r;
    int64_t out = 0;

    snprintf(count, sizeof(count), "%u", w->count);
    if(w->action == ALARMLIM_RAISE) {
        snprintf(window, sizeof(window), "%d", s->l.opt->alarm_window_s);
        snprintf(msg, sizeof(msg),
                 "unknown device %s: %u connection attempts with a valid device password "
                 "(last from %s); it is not in the device registry",
                 w->sn, w->count, w->addr[0] ? w->addr : "?");
        p[0] = w->sn;
        p[1] = count;
        p[2] = window;
        p[3] = msg;
        r = PQexecParams(s->pg, RAISE_SQL, 4, NULL, p, NULL, NULL, 0);
        if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            if(PQgetvalue(r, 0, 1)[0] == '1') {
                s->ctr.alarms_raised++;
                log_queued(s, MOSQ_LOG_WARNING,
                           "mcs_auth: UNKNOWN_DEVICE alarm %lld raised for sn %s (%u attempts)",
                           (long long)out, w->sn, w->count);
            }
        }
    }
    else {
        snprintf(id, sizeof(id), "%lld", (long long)w->alarm_id);
        p[0] = id;
        p[1] = count;
        r = PQexecParams(s->pg,
                         "UPDATE alarm_logs SET count = count + $2::int WHERE id = $1::bigint", 2,
                         NULL, p, NULL, NULL, 0);
        if(PQresultStatus(r) == PGRES_COMMAND_OK)
            out = w->alarm_id;
    }
    if(!out)
        log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: alarm write failed: %.*s",
                   first_line(PQresultErrorMessage(r)), PQresultErrorMessage(r));
    PQclear(r);
    return out;
}

static void alarms_run(struct authsync *s, int64_t now)
{
    struct auth_unknown u;
    struct alarmlim_work w;

    while(mbox_take(s->l.unknown, &u))
        alarmlim_note(&s->lim, u.sn, u.addr, now);
    for(int i = 0; i < ALARM_WRITES_PER_LOOP && s->pg; i++) {
        int64_t id;
        if(alarmlim_next(&s->lim, now, &w) == ALARMLIM_NONE)
            break;
        id = alarm_write(s, &w);
        alarmlim_done(&s->lim, &w, id, now);
        if(!id && PQstatus(s->pg) != CONNECTION_OK)
            db_drop(s, "alarm write");
    }
    s->ctr.alarms_suppressed = s->lim.suppressed;
}

/* --- metrics ------------------------------------------------------------------ */

static void metrics_publish(struct authsync *s)
{
    enum { NF = AUTHZ_R_COUNT + 48 }; /* every counter and gauge below, with room */
    const char *argv[2 + 2 * NF];
    size_t argl[2 + 2 * NF];
    char names[NF][48], vals[NF][24];
    int k = 0, argc = 2;
    char err[256];
    redisReply *rep;

    if(!s->rds) {
        if(mcs_mono_ms() < s->next_redis_try_ms)
            return;
        s->rds = mcs_redis_connect(&s->l.opt->cfg, err, sizeof(err));
        if(!s->rds) {
            if(s->redis_up || !s->next_redis_try_ms)
                log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: redis unavailable: %.200s", err);
            s->redis_up = 0;
            s->next_redis_try_ms = mcs_mono_ms() + REDIS_RETRY_MS;
            return;
        }
    }
    s->ctr.alarm_queue_dropped = mbox_dropped(s->l.unknown);
    s->ctr.log_dropped = mbox_dropped(s->l.logs);
#define PUT(name, val)                                                                             \
    do {                                                                                           \
        snprintf(names[k], sizeof(names[k]), "%s", (name));                                        \
        snprintf(vals[k], sizeof(vals[k]), "%llu", (unsigned long long)(val));                     \
        k++;                                                                                       \
    } while(0)
    PUT("auth_ok", s->bctr.auth[AUTHZ_R_OK]);
    for(int r = 1; r < AUTHZ_R_COUNT; r++) {
        char n[48];
        snprintf(n, sizeof(n), "auth_%s", authz_reason_name((enum authz_reason)r));
        PUT(n, s->bctr.auth[r]);
    }
#define AUTH_CTR_PUT(name) PUT(#name, s->bctr.name);
    AUTH_BROKER_COUNTERS(AUTH_CTR_PUT)
#undef AUTH_CTR_PUT
#define SYNC_CTR_PUT(name) PUT(#name, s->ctr.name);
    AUTH_SYNC_COUNTERS(SYNC_CTR_PUT)
#undef SYNC_CTR_PUT
    PUT("devices", devtab_count(s->l.devs));
    PUT("registry_loaded", devtab_loaded(s->l.devs));
    PUT("db_up", s->db_up);
    PUT("redis_up", 1);
    PUT("kick_backlog", s->kq_n - s->kq_head);
    PUT("updated_ms", mcs_now_ms());
#undef PUT
    argv[0] = "HSET";
    argl[0] = 4;
    argv[1] = METRICS_KEY;
    argl[1] = strlen(METRICS_KEY);
    for(int i = 0; i < k; i++) {
        argv[argc] = names[i];
        argl[argc++] = strlen(names[i]);
        argv[argc] = vals[i];
        argl[argc++] = strlen(vals[i]);
    }
    rep = redisCommandArgv(s->rds, argc, argv, argl);
    if(!rep || rep->type == REDIS_REPLY_ERROR) {
        log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: redis write failed: %.200s",
                   rep ? rep->str : s->rds->errstr);
        if(rep)
            freeReplyObject(rep);
        redisFree(s->rds);
        s->rds = NULL;
        s->redis_up = 0;
        s->next_redis_try_ms = mcs_mono_ms() + REDIS_RETRY_MS;
        return;
    }
    freeReplyObject(rep);
    s->redis_up = 1;
}

/* Takes the broker's messages: the latest counters, reload requests. */
static void ctl_drain(struct authsync *s)
{
    struct auth_ctl c;
    while(mbox_take(s->l.ctl, &c)) {
        s->bctr = c.ctr;
        if(c.reload)
            s->reload_requested = 1;
    }
}

/* --- the loop ------------------------------------------------------------------ */

static void *sync_main(void *arg)
{
    struct authsync *s = arg;

    while(!atomic_load(&s->stopping)) {
        int64_t now = mcs_mono_ms();

        ctl_drain(s);
        if(!s->pg && now >= s->next_db_try_ms)
            db_open(s);
        if(s->pg) {
            struct pollfd p = {PQsocket(s->pg), POLLIN, 0};
            int pr = poll(&p, 1, LOOP_MS);
            if(pr > 0 && !PQconsumeInput(s->pg)) {
                db_drop(s, PQerrorMessage(s->pg));
            }
            else {
                collect_notifies(s);
                if(s->reload_requested || s->notified_overflow ||
                   mcs_mono_ms() >= s->next_full_ms) {
                    s->nn = 0;
                    s->notified_overflow = 0;
                    s->reload_requested = 0;
                    if(full_load(s))
                        db_drop(s, "full reload");
                }
                else if(s->nn > 0) {
                    if(reload_notified(s))
                        db_drop(s, "device reload");
                    else
                        s->nn = 0;
                }
            }
        }
        else {
            mcs_sleep_ms(LOOP_MS);
        }
        now = mcs_mono_ms();
        kick_flush(s);
        if(now >= s->next_alarm_ms) {
            s->next_alarm_ms = now + ALARM_FLUSH_MS;
            alarms_run(s, now);
        }
        if(now >= s->next_metrics_ms) {
            s->next_metrics_ms = now + s->l.opt->metrics_interval_ms;
            ctl_drain(s); /* the broker's latest counters */
            metrics_publish(s);
        }
        if(s->snap_dirty && s->l.opt->snapshot_file[0] && now >= s->next_snap_ms) {
            if(devtab_snapshot_save(s->l.devs, s->l.opt->snapshot_file))
                log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: cannot write snapshot %.200s",
                           s->l.opt->snapshot_file);
            s->snap_dirty = 0;
            s->next_snap_ms = now + SNAPSHOT_DEBOUNCE_MS;
        }
    }
    return NULL;
}

int authsync_start(const struct authsync_link *link, struct authsync **out)
{
    struct authsync *s = calloc(1, sizeof(*s));
    struct alarmlim_cfg lc;
    sigset_t all, old;
    int rc = MCS_ENOMEM;

    *out = NULL;
    if(!s)
        goto out;
    s->l = *link;
    lc.min_attempts = (uint32_t)s->l.opt->alarm_min_attempts;
    lc.window_ms = (int64_t)s->l.opt->alarm_window_s * 1000;
    lc.max_per_min = (uint32_t)s->l.opt->alarm_max_per_min;
    lc.max_tracked = 1024;
    if(alarmlim_init(&s->lim, &lc))
        goto out;
    if(s->l.opt->snapshot_file[0]) {
        struct devtab_map *m = NULL;
        int lrc = devtab_snapshot_load(s->l.opt->snapshot_file, SNAPSHOT_MAX_ENTRIES, &m);
        if(lrc == 0) {
            size_t n = devtab_map_count(m);
            devtab_map_free(devtab_replace(s->l.devs, m, 2));
            log_queued(s, MOSQ_LOG_NOTICE,
                       "mcs_auth: %zu devices from snapshot %.200s; refreshing from the "
                       "database",
                       n, s->l.opt->snapshot_file);
        }
        else if(lrc != MCS_ENOTFOUND) {
            log_queued(s, MOSQ_LOG_WARNING, "mcs_auth: snapshot %.200s unusable: %s",
                       s->l.opt->snapshot_file, mcs_strerror(lrc));
        }
    }
    /* Without a snapshot, load now: a broker that accepted connections
     * with an empty table would refuse every device as unknown. */
    if(!devtab_loaded(s->l.devs))
        db_open(s);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&s->th, NULL, sync_main, s) ? MCS_ENOMEM : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if(rc)
        goto out;
    s->started = 1;
    *out = s;
    s = NULL;
out:
    if(s) {
        if(s->pg)
            PQfinish(s->pg);
        alarmlim_cleanup(&s->lim);
        free(s);
    }
    return rc;
}

void authsync_stop(struct authsync *s)
{
    if(!s)
        return;
    atomic_store(&s->stopping, 1);
    if(s->started)
        pthread_join(s->th, NULL);
    if(s->snap_dirty && s->l.opt->snapshot_file[0])
        devtab_snapshot_save(s->l.devs, s->l.opt->snapshot_file);
    if(s->pg)
        PQfinish(s->pg);
    if(s->rds)
        redisFree(s->rds);
    alarmlim_cleanup(&s->lim);
    free(s->kq);
    free(s);
}

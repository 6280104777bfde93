/* scheduler.c - slot arithmetic of the schedule, leadership by a PostgreSQL
 * session advisory lock, and the scheduler thread that runs due jobs one
 * after another on its own job connection (see sched.h). Every wait is a
 * condition-variable wait that sched_stop() ends at once.
 * Owns struct mcs_sched and its connections. Thread: its own. */
#include "scheduler.h"
#include "conn.h"
#include "err.h"
#include "jobs.h"
#include "localday.h"
#include "log.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHED_POLL_MS 5000 /* follower retry and leader liveness check */

int64_t sched_prev_due(const struct sched_spec *spec, int64_t now)
{
    switch(spec->kind) {
    case SCHED_EVERY: {
        int64_t p = spec->period_s > 0 ? spec->period_s : 60;
        int64_t k = now >= 0 ? now / p : (now - p + 1) / p;
        return k * p;
    }
    case SCHED_HOURLY: {
        time_t t = (time_t)now;
        struct tm tm;
        localtime_r(&t, &tm);
        tm.tm_min = spec->minute;
        tm.tm_sec = 0;
        int64_t s = (int64_t)mktime(&tm);
        return s > now ? s - 3600 : s;
    }
    case SCHED_DAILY:
    case SCHED_WEEKLY: {
        int64_t day = mcs_local_day(now);
        for(int i = 0; i < 9; i++, day--) {
            if(spec->kind == SCHED_WEEKLY && mcs_weekday(day) != spec->wday)
                continue;
            int64_t s = mcs_local_at(day, spec->hour, spec->minute);
            if(s <= now)
                return s;
        }
        break;
    }
    }
    return now;
}

int64_t sched_next_due(const struct sched_spec *spec, int64_t now)
{
    switch(spec->kind) {
    case SCHED_EVERY:
        return sched_prev_due(spec, now) + (spec->period_s > 0 ? spec->period_s : 60);
    case SCHED_HOURLY: {
        int64_t s = sched_prev_due(spec, now) + 3600;
        /* An hour that is not 3600 s of local time (a DST change) is found
         * again from its local fields. */
        return sched_prev_due(spec, s) > now ? sched_prev_due(spec, s) : s;
    }
    case SCHED_DAILY:
    case SCHED_WEEKLY: {
        int64_t day = mcs_local_day(now);
        for(int i = 0; i < 9; i++, day++) {
            if(spec->kind == SCHED_WEEKLY && mcs_weekday(day) != spec->wday)
                continue;
            int64_t s = mcs_local_at(day, spec->hour, spec->minute);
            if(s > now)
                return s;
        }
        break;
    }
    }
    return now + 60;
}

#define NJOBS_MAX 16

struct mcs_sched {
    const struct mcs_config *cfg;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int stop;
    PGconn *lock_pg; /* holds the leader lock while leader */
    PGconn *job_pg;
    int leader;
    int64_t last_due[NJOBS_MAX]; /* newest slot recorded per job, Unix s */
};

/* Waits up to ms or until sched_stop(). Returns 1 when stopping. */
static int wait_ms(struct mcs_sched *s, int64_t ms)
{
    struct timespec ts;
    if(ms < 0)
        ms = 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if(ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while(!atomic_load(&s->stop))
        if(pthread_cond_timedwait(&s->cv, &s->mu, &ts))
            break;
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->stop);
}

static int64_t wall_s(void)
{
    return mcs_now_ms() / 1000;
}

static void drop_conn(PGconn **pg)
{
    if(*pg)
        PQfinish(*pg);
    *pg = NULL;
}

static void step_down(struct mcs_sched *s, const char *why)
{
    if(s->leader)
        LOG_W("sched", "leadership lost", LS("error", why));
    s->leader = 0;
    drop_conn(&s->lock_pg);
}

/* The newest slot each job has recorded; a job that has never run gets a
 * 'skipped' marker for its current slot, so that a fresh install starts its
 * schedule from now instead of running every daily job at once. */
static int load_slots(struct mcs_sched *s)
{
    char err[512];
    int64_t now = wall_s();
    for(const struct mcs_job *j = mcs_jobs; j->name; j++) {
        int i = (int)(j - mcs_jobs);
        const char *p[1] = {j->name};
        /* A run the previous leader died in frees its slot for a re-run. */
        job_reap_stale(s->job_pg, j);
        PGresult *r = PQexecParams(s->job_pg,
                                   "SELECT extract(epoch FROM max(due))::bigint, count(*) "
                                   "FROM job_runs WHERE job = $1 AND due IS NOT NULL "
                                   "AND outcome <> 'abandoned'",
                                   1, NULL, p, NULL, NULL, 0);
        if(PQresultStatus(r) != PGRES_TUPLES_OK) {
            LOG_W("sched", "cannot read job_runs", LS("error", PQresultErrorMessage(r)));
            PQclear(r);
            return MCS_EDB;
        }
        int any = strtol(PQgetvalue(r, 0, 1), NULL, 10) > 0;
        s->last_due[i] = any ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
        PQclear(r);
        if(!any && j->when.kind != SCHED_EVERY) {
            char dues[32];
            int64_t due = sched_prev_due(&j->when, now);
            snprintf(dues, sizeof(dues), "%" PRId64, due);
            const char *p2[3] = {j->name, dues, s->cfg->instance_id};
            r = PQexecParams(s->job_pg,
                             "INSERT INTO job_runs (job, due, trigger, instance, outcome, ended_at, error) "
                             "VALUES ($1, to_timestamp($2::bigint), 'schedule', $3, 'skipped', now(),"
                             " 'first start: schedule begins now') "
                             "ON CONFLICT (job, due) WHERE outcome <> 'abandoned' DO NOTHING",
                             3, NULL, p2, NULL, NULL, 0);
            PQclear(r);
            s->last_due[i] = due;
        }
    }
    (void)err;
    return 0;
}

static int connect_jobs(struct mcs_sched *s)
{
    char err[512];
    if(s->job_pg && PQstatus(s->job_pg) == CONNECTION_OK)
        return 0;
    drop_conn(&s->job_pg);
    s->job_pg = mcs_pg_connect(s->cfg, "mcsd-jobs", err, sizeof(err));
    if(!s->job_pg) {
        LOG_W("sched", "job connection failed", LS("error", err));
        return MCS_EDB;
    }
    return 0;
}

/* Tries to become (or checks that we still are) the leader. */
static void leadership(struct mcs_sched *s)
{
    char err[512];
    if(s->leader) {
        /* The lock lives as long as this session: a failed round trip means
         * it may be gone, so stop scheduling at once. */
        const char *p[1] = {s->cfg->instance_id};
        PGresult *r = PQexecParams(s->lock_pg,
                                   "UPDATE sched_leader SET heartbeat = now() WHERE id = 1 AND instance = $1",
                                   1, NULL, p, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if(!ok)
            snprintf(err, sizeof(err), "%s", PQerrorMessage(s->lock_pg));
        PQclear(r);
        if(!ok)
            step_down(s, err);
        return;
    }
    if(!s->lock_pg) {
        s->lock_pg = mcs_pg_connect(s->cfg, "mcsd-sched-lock", err, sizeof(err));
        if(!s->lock_pg)
            return;
        /* Server-side keepalives: a leader whose host vanishes is noticed
         * by the server, which ends the session and frees the lock. */
        if(mcs_pg_exec(s->lock_pg,
                       "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;"
                       " SET tcp_keepalives_count = 3",
                       err, sizeof(err)))
            LOG_D("sched", "keepalive settings refused", LS("error", err));
    }
    PGresult *r = PQexec(s->lock_pg, "SELECT pg_try_advisory_lock(" SCHED_LEADER_KEY ")");
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
        PQclear(r);
        drop_conn(&s->lock_pg);
        return;
    }
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if(!got)
        return;
    if(connect_jobs(s)) {
        step_down(s, "no job connection");
        return;
    }
    {
        const char *p[1] = {s->cfg->instance_id};
        r = PQexecParams(s->lock_pg,
                         "INSERT INTO sched_leader (id, instance, since, heartbeat) "
                         "VALUES (1, $1, now(), now()) ON CONFLICT (id) DO UPDATE SET "
                         "instance = EXCLUDED.instance, since = now(), heartbeat = now()",
                         1, NULL, p, NULL, NULL, 0);
        PQclear(r);
    }
    if(load_slots(s)) {
        step_down(s, "cannot read job_runs");
        return;
    }
    s->leader = 1;
    LOG_I("sched", "leader", LS("instance", s->cfg->instance_id));
}

/* Runs every job whose current slot has not been recorded, in table order.
 * Returns ms until the next slot of any job. */
static int64_t run_due(struct mcs_sched *s)
{
    int64_t now = wall_s(), next = INT64_MAX;
    for(const struct mcs_job *j = mcs_jobs; j->name && !atomic_load(&s->stop); j++) {
        int i = (int)(j - mcs_jobs);
        int64_t due = sched_prev_due(&j->when, now);
        if(due > s->last_due[i]) {
            if(connect_jobs(s))
                break;
            /* A slot more than one period late is a catch-up (host was off). */
            const char *trig = (j->when.kind != SCHED_EVERY && now - due > 120) ? "catchup"
                                                                                 : "schedule";
            struct mcs_jobctx jc = {.cfg = s->cfg, .pg = s->job_pg, .stop = &s->stop, .now = now};
            enum mcs_job_outcome o = job_execute(j, &jc, due, trig, s->cfg->instance_id, NULL);
            if(o == JOB_SKIPPED && !strcmp(jc.err, "slot already run"))
                s->last_due[i] = due;
            else if(o != JOB_SKIPPED)
                s->last_due[i] = due;
            if(PQstatus(s->job_pg) != CONNECTION_OK)
                drop_conn(&s->job_pg);
            now = wall_s();
            /* Leadership may have been lost during a long job. */
            leadership(s);
            if(!s->leader)
                return SCHED_POLL_MS;
        }
        int64_t n = sched_next_due(&j->when, now);
        if(n < next)
            next = n;
    }
    int64_t ms = (next - wall_s()) * 1000;
    return ms < 0 ? 0 : ms;
}

static void *sched_main(void *arg)
{
    struct mcs_sched *s = arg;
    while(!atomic_load(&s->stop)) {
        int64_t wait = SCHED_POLL_MS;
        leadership(s);
        if(s->leader) {
            int64_t ms = run_due(s);
            if(ms < wait)
                wait = ms;
        }
        if(wait_ms(s, wait))
            break;
    }
    if(s->leader && s->lock_pg)
        PQclear(PQexec(s->lock_pg, "SELECT pg_advisory_unlock(" SCHED_LEADER_KEY ")"));
    drop_conn(&s->lock_pg);
    drop_conn(&s->job_pg);
    return NULL;
}

int sched_start(const struct mcs_config *cfg, struct mcs_sched **out)
{
    pthread_condattr_t ca;
    struct mcs_sched *s = calloc(1, sizeof(*s));
    *out = NULL;
    if(!s)
        return MCS_ENOMEM;
    _Static_assert(sizeof(((struct mcs_sched *)0)->last_due) / sizeof(int64_t) >= 8,
                   "NJOBS_MAX below the job table");
    s->cfg = cfg;
    /* Library set-up once, from the main thread, before any job uses them. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if(pthread_create(&s->th, NULL, sched_main, s)) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return MCS_EIO;
    }
    LOG_I("sched", "scheduler started", LS("tz", cfg->tz));
    *out = s;
    return 0;
}

int sched_stop(struct mcs_sched *s, int64_t deadline_ms)
{
    struct timespec ts;
    int64_t left;
    if(!s)
        return 0;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, 1);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    left = deadline_ms - mcs_mono_ms();
    if(left < 0)
        left = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(left / 1000);
    ts.tv_nsec += (long)(left % 1000) * 1000000L;
    if(ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if(pthread_timedjoin_np(s->th, NULL, &ts)) {
        LOG_W("sched", "scheduler thread still busy at the stop deadline");
        return 1;
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return 0;
}

/* jobs.c - the job table of R-OP-2, job_execute (lock, job_runs row, alarm)
 * and the small jobs: offline scan, health check, hourly statistics, license
 * (not built), VACUUM ANALYZE. Archive and backup live in archive.c and
 * backup.c. Owns nothing persistent. Thread: the caller's. */
#include "pglocks.h"
#include "jobs.h"
#include "conn.h"
#include "err.h"
#include "health.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define JOB_LOCK_KEY MCS_LOCK_JOB /* pg_try_advisory_lock(JOB_LOCK_KEY, job index) */

const char *job_outcome_name(enum mcs_job_outcome o)
{
    switch(o) {
    case JOB_OK: return "ok";
    case JOB_FAILED: return "failed";
    case JOB_SKIPPED: return "skipped";
    case JOB_NOT_BUILT: return "not_built";
    }
    return "failed";
}

int job_should_stop(const struct mcs_jobctx *jc)
{
    return jc->stop && atomic_load(jc->stop);
}

int sysalarm_raise(PGconn *pg, const char *alarm_type, const char *message)
{
    char err[256];
    const char *p[2] = {alarm_type, message};
    PGresult *r = mcs_pg_query(
        pg,
        "WITH u AS (UPDATE alarm_logs SET count = count + 1, message = $2 "
        " WHERE sn = 'SYSTEM' AND alarm_type = $1 AND cleared_at IS NULL RETURNING id) "
        "INSERT INTO alarm_logs (sn, alarm_type, message) "
        "SELECT 'SYSTEM', $1, $2 WHERE NOT EXISTS (SELECT 1 FROM u)",
        2, p, PGRES_COMMAND_OK, err, sizeof(err));
    if(!r) {
        LOG_W("jobs", "system alarm not recorded", LS("type", alarm_type), LS("error", err));
        return MCS_EDB;
    }
    PQclear(r);
    LOG_W("jobs", "system alarm", LS("type", alarm_type), LS("message", message));
    return 0;
}

int sysalarm_clear(PGconn *pg, const char *alarm_type)
{
    char err[256];
    const char *p[1] = {alarm_type};
    PGresult *r = mcs_pg_query(pg,
                               "UPDATE alarm_logs SET state = 'cleared', cleared_at = now() "
                               "WHERE sn = 'SYSTEM' AND alarm_type = $1 AND cleared_at IS NULL",
                               1, p, PGRES_COMMAND_OK, err, sizeof(err));
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

/* ---- the small jobs ---- */

static enum mcs_job_outcome job_offline(struct mcs_jobctx *jc)
{
    /* R-PR-3 across instances: a device whose last reading any instance
     * stored is older than OFFLINE_AFTER_S (90 s) is offline, even when the instance that saw
     * it last is gone. The alarms module hooks OFFLINE alarms here. */
    char secs[16];
    snprintf(secs, sizeof(secs), "%d", jc->cfg->offline_after_s);
    const char *p[1] = {secs};
    PGresult *r = mcs_pg_query(
        jc->pg,
        "UPDATE devices SET status = 'offline' WHERE status = 'online' "
        "AND (last_seen IS NULL OR last_seen < now() - make_interval(secs => $1::int))",
        1, p, PGRES_COMMAND_OK, jc->err, sizeof(jc->err));
    if(!r)
        return JOB_FAILED;
    snprintf(jc->detail, sizeof(jc->detail), "{\"marked_offline\":%s}", PQcmdTuples(r));
    PQclear(r);
    return JOB_OK;
}

static enum mcs_job_outcome job_health(struct mcs_jobctx *jc)
{
    char rerr[256] = "";
    int redis_ok = 0;
    double free_pct = -1;
    struct statvfs vs;
    PGresult *r = mcs_pg_query(jc->pg, "SELECT count(*) FROM pg_stat_activity", 0, NULL,
                               PGRES_TUPLES_OK, jc->err, sizeof(jc->err));
    if(!r)
        return JOB_FAILED;
    long conns = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* Jobs whose last run failed, for whoever reads the health record. */
    r = mcs_pg_query(jc->pg, "SELECT count(*) FROM job_last_runs WHERE outcome = 'failed'", 0, NULL,
                     PGRES_TUPLES_OK, jc->err, sizeof(jc->err));
    if(!r)
        return JOB_FAILED;
    long jobs_failed = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    redisContext *rc = mcs_redis_connect(jc->cfg, rerr, sizeof(rerr));
    if(rc) {
        redisReply *rep = redisCommand(rc, "PING");
        redis_ok = rep && rep->type != REDIS_REPLY_ERROR;
        if(rep)
            freeReplyObject(rep);
        redisFree(rc);
    }
    if(statvfs(jc->cfg->spool_dir, &vs) == 0 && vs.f_blocks > 0)
        free_pct = 100.0 * (double)vs.f_bavail / (double)vs.f_blocks;
    snprintf(jc->detail, sizeof(jc->detail),
             "{\"db\":\"ok\",\"db_connections\":%ld,\"redis\":\"%s\",\"spool_free_pct\":%.1f,"
             "\"jobs_failed\":%ld",
             conns, redis_ok ? "ok" : "down", free_pct, jobs_failed);
    /* The §8.4 thresholds (health.c): system alarms of their own, raised
     * and cleared here; they do not fail the job. */
    if(health_check(jc->pg, jc->cfg, jc->detail, sizeof(jc->detail) - 1))
        LOG_W("jobs", "a health threshold could not be checked");
    {
        size_t l = strlen(jc->detail);
        snprintf(jc->detail + l, sizeof(jc->detail) - l, "}");
    }
    if(!redis_ok) {
        snprintf(jc->err, sizeof(jc->err), "redis unreachable: %s", rerr[0] ? rerr : "PING failed");
        return JOB_FAILED;
    }
    if(free_pct >= 0 && free_pct < 5.0) {
        snprintf(jc->err, sizeof(jc->err), "spool disk %.1f%% free", free_pct);
        return JOB_FAILED;
    }
    return JOB_OK;
}

int job_stats_hour(PGconn *pg, int64_t hour_start, char *err, size_t errn)
{
    char lo[32], hi[32];
    snprintf(lo, sizeof(lo), "%" PRId64, hour_start);
    snprintf(hi, sizeof(hi), "%" PRId64, hour_start + 3600);
    const char *p[2] = {lo, hi};
    PGresult *r = mcs_pg_query(
        pg,
        "WITH r AS ("
        " SELECT sn, time, seq, lag(seq) OVER (PARTITION BY sn ORDER BY time, seq) AS prev"
        " FROM sensor_data WHERE time >= to_timestamp($1::bigint) - interval '1 hour'"
        " AND time < to_timestamp($2::bigint)),"
        " g AS (SELECT sn, (seq - prev) & 65535 AS gap, prev FROM r"
        " WHERE time >= to_timestamp($1::bigint)),"
        " s AS (SELECT sn, count(*) FILTER (WHERE prev IS NULL OR gap <> 0) AS received,"
        " coalesce(sum(gap - 1) FILTER (WHERE gap BETWEEN 1 AND 32767), 0) AS lost"
        " FROM g GROUP BY sn) "
        "INSERT INTO device_stats_hourly (sn, hour, received, lost, loss_rate) "
        "SELECT sn, to_timestamp($1::bigint), received, lost,"
        " CASE WHEN received + lost > 0 THEN lost::float8 / (received + lost) END FROM s "
        "ON CONFLICT (sn, hour) DO UPDATE SET received = EXCLUDED.received,"
        " lost = EXCLUDED.lost, loss_rate = EXCLUDED.loss_rate, computed_at = now()",
        2, p, PGRES_COMMAND_OK, err, errn);
    if(!r)
        return MCS_EDB;
    int n = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return n;
}

static enum mcs_job_outcome job_stats(struct mcs_jobctx *jc)
{
    /* The last two whole hours: the earlier one again for readings that
     * reached the database late (spooled during an outage). */
    int64_t h = (jc->now / 3600) * 3600 - 3600;
    int n1 = job_stats_hour(jc->pg, h - 3600, jc->err, sizeof(jc->err));
    if(n1 < 0)
        return JOB_FAILED;
    int n2 = job_stats_hour(jc->pg, h, jc->err, sizeof(jc->err));
    if(n2 < 0)
        return JOB_FAILED;
    snprintf(jc->detail, sizeof(jc->detail), "{\"hour\":%" PRId64 ",\"devices\":%d,\"devices_prev\":%d}",
             h, n2, n1);
    return JOB_OK;
}

static enum mcs_job_outcome job_license(struct mcs_jobctx *jc)
{
    snprintf(jc->err, sizeof(jc->err), "license check not built yet (license issue)");
    return JOB_NOT_BUILT;
}

static enum mcs_job_outcome job_vacuum(struct mcs_jobctx *jc)
{
    if(mcs_pg_exec(jc->pg, "VACUUM ANALYZE", jc->err, sizeof(jc->err)))
        return JOB_FAILED;
    return JOB_OK;
}

const struct mcs_job mcs_jobs[] = {
    {"offline", {SCHED_EVERY, 60, 0, 0, 0}, job_offline, "JOB_OFFLINE"},
    {"health", {SCHED_EVERY, 300, 0, 0, 0}, job_health, "HEALTH_FAILED"},
    {"stats", {SCHED_HOURLY, 0, 0, 0, 2}, job_stats, "JOB_STATS"},
    {"archive", {SCHED_DAILY, 0, 0, 2, 0}, archive_job, "ARCHIVE_FAILED"},
    {"license", {SCHED_DAILY, 0, 0, 3, 0}, job_license, "LICENSE_FAILED"},
    {"vacuum", {SCHED_DAILY, 0, 0, 4, 0}, job_vacuum, "JOB_VACUUM"},
    {"backup", {SCHED_WEEKLY, 0, 0, 3, 0}, backup_job, "BACKUP_FAILED"},
    {NULL, {SCHED_EVERY, 0, 0, 0, 0}, NULL, NULL},
};

const struct mcs_job *job_find(const char *name)
{
    for(const struct mcs_job *j = mcs_jobs; j->name; j++)
        if(!strcmp(j->name, name))
            return j;
    return NULL;
}

int job_reap_stale(PGconn *pg, const struct mcs_job *j)
{
    char idx[16], err[256];
    const char *p[1] = {idx};
    int n = 0;
    snprintf(idx, sizeof(idx), "%d", (int)(j - mcs_jobs));
    PGresult *r = mcs_pg_query(pg, "SELECT pg_try_advisory_lock(" JOB_LOCK_KEY ", $1::int)", 1, p,
                               PGRES_TUPLES_OK, err, sizeof(err));
    if(!r)
        return MCS_EDB;
    int locked = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if(!locked)
        return 0; /* a run is alive somewhere */
    const char *p2[1] = {j->name};
    r = mcs_pg_query(
        pg,
        "UPDATE job_runs SET outcome = 'abandoned', ended_at = clock_timestamp(),"
        " error = 'process ended during the run' WHERE job = $1 AND outcome = 'running'",
        1, p2, PGRES_COMMAND_OK, err, sizeof(err));
    if(r) {
        n = (int)strtol(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    PQclear(mcs_pg_query(pg, "SELECT pg_advisory_unlock(" JOB_LOCK_KEY ", $1::int)", 1, p,
                         PGRES_TUPLES_OK, err, sizeof(err)));
    return n;
}

enum mcs_job_outcome job_execute(const struct mcs_job *j, struct mcs_jobctx *jc, int64_t due,
                                 const char *trigger, const char *instance,
                                 long long *run_id)
{
    char idx[16], dues[32], err[512];
    enum mcs_job_outcome o = JOB_FAILED;
    PGresult *r = NULL;
    long long id = 0;
    int locked = 0;

    if(run_id)
        *run_id = 0;
    jc->err[0] = jc->detail[0] = '\0';
    snprintf(idx, sizeof(idx), "%d", (int)(j - mcs_jobs));
    snprintf(dues, sizeof(dues), "%" PRId64, due);
    {
        const char *p[1] = {idx};
        r = mcs_pg_query(jc->pg, "SELECT pg_try_advisory_lock(" JOB_LOCK_KEY ", $1::int)", 1, p,
                         PGRES_TUPLES_OK, jc->err, sizeof(jc->err));
        if(!r)
            goto out;
        locked = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        r = NULL;
        if(!locked) {
            snprintf(jc->err, sizeof(jc->err), "job %s is running elsewhere", j->name);
            o = JOB_SKIPPED;
            goto out;
        }
    }
    {
        /* Holding the job's lock, no other run of it is alive: rows still
         * 'running' belong to a process that died during its run. */
        const char *p[1] = {j->name};
        r = mcs_pg_query(
            jc->pg,
            "UPDATE job_runs SET outcome = 'abandoned', ended_at = clock_timestamp(),"
            " error = 'process ended during the run' WHERE job = $1 AND outcome = 'running'",
            1, p, PGRES_COMMAND_OK, jc->err, sizeof(jc->err));
        if(!r)
            goto out;
        PQclear(r);
        r = NULL;
    }
    {
        const char *p[4] = {j->name, due ? dues : NULL, trigger, instance};
        r = mcs_pg_query(
            jc->pg,
            "INSERT INTO job_runs (job, due, trigger, instance, outcome) "
            "VALUES ($1, to_timestamp($2::bigint), $3, $4, 'running') "
            "ON CONFLICT (job, due) WHERE outcome <> 'abandoned' DO NOTHING RETURNING id",
            4, p, PGRES_TUPLES_OK, jc->err, sizeof(jc->err));
        if(!r)
            goto out;
        if(PQntuples(r) == 0) {
            snprintf(jc->err, sizeof(jc->err), "slot already run");
            o = JOB_SKIPPED;
            goto out;
        }
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        r = NULL;
    }
    LOG_I("jobs", "job started", LS("job", j->name), LS("trigger", trigger), LI("run", id));
    o = j->run(jc);
    mcs_one_line(jc->err);
    {
        char ids[32];
        snprintf(ids, sizeof(ids), "%lld", id);
        const char *p[4] = {ids, job_outcome_name(o), jc->err[0] ? jc->err : NULL,
                            jc->detail[0] ? jc->detail : NULL};
        r = mcs_pg_query(
            jc->pg,
            "UPDATE job_runs SET ended_at = clock_timestamp(), outcome = $2, error = $3,"
            " detail = $4::jsonb WHERE id = $1::bigint",
            4, p, PGRES_COMMAND_OK, err, sizeof(err));
        if(!r)
            LOG_W("jobs", "job run not recorded", LS("job", j->name), LS("error", err));
        PQclear(r);
        r = NULL;
    }
    if(o == JOB_FAILED) {
        char msg[640];
        snprintf(msg, sizeof(msg), "job %s failed: %s", j->name, jc->err);
        sysalarm_raise(jc->pg, j->alarm_type, msg);
        LOG_W("jobs", "job failed", LS("job", j->name), LS("error", jc->err));
    }
    else {
        if(o == JOB_OK)
            sysalarm_clear(jc->pg, j->alarm_type);
        LOG_I("jobs", "job ended", LS("job", j->name), LS("outcome", job_outcome_name(o)));
    }
out:
    PQclear(r);
    if(locked) {
        const char *p[1] = {idx};
        r = mcs_pg_query(jc->pg, "SELECT pg_advisory_unlock(" JOB_LOCK_KEY ", $1::int)", 1, p,
                         PGRES_TUPLES_OK, err, sizeof(err));
        PQclear(r);
    }
    if(run_id)
        *run_id = id;
    return o;
}

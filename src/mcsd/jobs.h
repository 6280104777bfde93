/* jobs.h - the scheduled jobs of R-OP-2 and the one way to run one: a
 * job-level advisory lock (a job never runs twice at once, by schedule or by
 * hand), a job_runs row (start, end, outcome, error, detail), a system alarm
 * in alarm_logs when it fails, cleared when it next succeeds.
 * Used by the scheduler thread (sched.c) and by `mcs job run` (mcs_job.c).
 * Owns nothing persistent. Thread: the caller's; jc->pg is used by it alone. */
#ifndef MCS_JOBS_H
#define MCS_JOBS_H

#include "config.h"
#include "scheduler.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>

enum mcs_job_outcome {
    JOB_OK = 0,
    JOB_FAILED,
    JOB_SKIPPED,   /* not run: another instance or a manual run holds it */
    JOB_NOT_BUILT, /* the job exists in the schedule but is not implemented */
};

/* Name of an outcome as stored in job_runs.outcome. Never NULL. */
const char *job_outcome_name(enum mcs_job_outcome o);

struct mcs_jobctx {
    const struct mcs_config *cfg;
    PGconn *pg;               /* borrowed; the job's own connection */
    const _Atomic int *stop;  /* set when the process stops; may be NULL */
    int64_t now;              /* wall clock (Unix s) the run counts as */
    char err[512];            /* why it failed (one line, no secrets) */
    char detail[1024];        /* a JSON object with what it did, or "" */
};

struct mcs_job {
    const char *name;
    struct sched_spec when;
    enum mcs_job_outcome (*run)(struct mcs_jobctx *jc);
    const char *alarm_type; /* alarm_logs.alarm_type raised on failure */
};

/* Every job, ended by {NULL}. */
extern const struct mcs_job mcs_jobs[];

/* The job called name, or NULL. */
const struct mcs_job *job_find(const char *name);

/* Runs j once, now. due is the schedule slot it stands for (Unix s), or 0
 * for a run by hand; trigger is "schedule", "catchup" or "manual". With a
 * slot, a job_runs row for (job, slot) that already exists means another
 * instance did it: returns JOB_SKIPPED without running. *run_id (may be
 * NULL) receives the job_runs id or 0. Returns the outcome; jc->err says
 * why when it is not JOB_OK. */
enum mcs_job_outcome job_execute(const struct mcs_job *j, struct mcs_jobctx *jc, int64_t due,
                                 const char *trigger, const char *instance,
                                 long long *run_id);

/* Marks j's job_runs rows left 'running' by a process that died as
 * 'abandoned' (so their slot may run again), when no run of j is alive
 * (its job lock is free). Returns rows marked or MCS_EDB. */
int job_reap_stale(PGconn *pg, const struct mcs_job *j);

/* True when the run should end early (process stopping). */
int job_should_stop(const struct mcs_jobctx *jc);

/* Raises (or refreshes: count + 1, new message) the open system alarm of
 * alarm_type (sn 'SYSTEM', cleared_at NULL); clear sets cleared_at (and
 * state, which the alarms schema's trigger derives itself). Returns 0 or
 * MCS_EDB. The alarms module may take these over; they only touch
 * alarm_logs. */
int sysalarm_raise(PGconn *pg, const char *alarm_type, const char *message);
int sysalarm_clear(PGconn *pg, const char *alarm_type);

/* Per-device packet loss for the local hour starting at hour_start (Unix s)
 * from the stored rows of every instance, by the registry's rule (gap =
 * (seq - previous seq) mod 65536: 0 a repeat, 1..32767 means gap - 1 lost,
 * larger is an older resend), the previous hour's rows giving each device's
 * first predecessor. Upserts device_stats_hourly. Returns devices written
 * or MCS_EDB. */
int job_stats_hour(PGconn *pg, int64_t hour_start, char *err, size_t errn);

/* Job bodies of other modules (archive.c, backup.c). */
enum mcs_job_outcome archive_job(struct mcs_jobctx *jc);
enum mcs_job_outcome backup_job(struct mcs_jobctx *jc);

#endif

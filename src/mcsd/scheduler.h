/* scheduler.h - (not sched.h: that would shadow <sched.h>) the scheduler of mcsd (R-OP-2): when each job is due in the
 * plant's time zone, the leader lock that makes each run happen once across
 * instances, and the thread that runs due jobs (src/mcsd/jobs.c has the jobs).
 * Owns its two PostgreSQL connections (leader lock, jobs). Thread: its own;
 * the schedule functions are pure and callable from any thread. */
#ifndef MCS_SCHEDULER_H
#define MCS_SCHEDULER_H

#include "config.h"

#include <stdint.h>

enum sched_kind {
    SCHED_EVERY,  /* every period_s seconds, slots aligned to the epoch */
    SCHED_HOURLY, /* every local hour at :minute */
    SCHED_DAILY,  /* every local day at hour:minute */
    SCHED_WEEKLY, /* every week on wday (0 = Sunday) at hour:minute */
};

struct sched_spec {
    enum sched_kind kind;
    int period_s;
    int wday, hour, minute;
};

/* The latest slot of spec at or before now (Unix s): the run that should
 * have started by now. Pure apart from the process time zone. */
int64_t sched_prev_due(const struct sched_spec *spec, int64_t now);
/* The first slot strictly after now. */
int64_t sched_next_due(const struct sched_spec *spec, int64_t now);

/* Leadership: a session advisory lock on a dedicated connection whose server
 * side has TCP keepalives (10 s idle, 5 s interval, 3 probes), so a leader
 * that dies or loses its network releases the lock within ~25 s; followers
 * try again every SCHED_POLL_S. */
#define SCHED_LEADER_KEY "7342010"

struct mcs_sched;

/* Starts the scheduler thread for this instance. Returns 0 or MCS_ENOMEM /
 * MCS_EIO (thread). cfg is borrowed for the thread's lifetime. */
int sched_start(const struct mcs_config *cfg, struct mcs_sched **out);

/* Wakes the thread, asks a running job to stop at its next check (a COPY is
 * cancelled, a transfer aborted, pg_dump killed), waits for it until
 * deadline_ms (mcs_mono_ms clock) and frees it. Returns 0, or 1 when the
 * thread is still blocked at the deadline (then it is left running and not
 * freed: the process is about to exit). NULL is a no-op returning 0. */
int sched_stop(struct mcs_sched *s, int64_t deadline_ms);

#endif

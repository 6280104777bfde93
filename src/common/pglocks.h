/* pglocks.h - every PostgreSQL advisory lock key of MCS-IoT, in one place so
 * that two subsystems can never pick the same number (they did once: the
 * alarm-event relay and the scheduler's leader lock were both 7342010, and
 * the scheduler never became leader in an mcsd that relayed events).
 * Owns nothing. Thread: any. */
#ifndef MCS_PGLOCKS_H
#define MCS_PGLOCKS_H

#define MCS_LOCK_MIGRATE "7342001"      /* migrate.c: schema migrations */
#define MCS_LOCK_SCHED_LEADER "7342010" /* scheduler.c: the leader instance */
#define MCS_LOCK_JOB "7342011"          /* jobs.c: (key, job index), one run at a time */
#define MCS_LOCK_ALARM_RELAY "7342012"  /* notify.c: the instance relaying alarm events */
#define MCS_LOCK_LICENSE_DEVICES "7342013" /* h_license.c: device adds against max_devices */

#endif

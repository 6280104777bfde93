/* mcsd.h - the daemon's context, made in main() and passed to every thread
 * (STYLE rule 8: no hidden globals). Owns nothing itself; main owns it. */
#ifndef MCS_MCSD_H
#define MCS_MCSD_H

#include "cmdres.h"
#include "config.h"
#include "log.h"
#include "journal.h"
#include "metrics.h"
#include "registry.h"

#include <stdatomic.h>

struct alarm_engine; /* alarm_db.h (#7) */

struct mcsd {
    const struct mcs_config *cfg;
    struct mcs_registry reg;
    struct mcs_journal journal;
    struct mcs_metrics metrics;
    _Atomic int stopping;   /* set by main on SIGTERM */
    _Atomic int ingest_done;/* set once no more journal appends can happen */
    /* Rejection log lines, one limit per reason (so a flood of one kind of
     * bad input never hides the first line of another); ingest thread only. */
    struct mcs_ratelimit reject_rl[MCS_REJ_COUNT];
    struct alarm_engine *alarm; /* alarms (#7): made by notify_start, used by store */
    /* issue #17: 1 while the license lets telemetry be stored; set by main's
     * license watch (licwatch in main.c), read by the store thread. */
    _Atomic int licensed;
    struct mcs_cmdres cmdres;   /* command results (#20): ingest queues, store writes */
};

#endif

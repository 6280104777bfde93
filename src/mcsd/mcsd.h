/* mcsd.h - the daemon's context, made in main() and passed to every thread
 * (STYLE rule 8: no hidden globals). Owns nothing itself; main owns it. */
#ifndef MCS_MCSD_H
#define MCS_MCSD_H

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
    struct mcs_ratelimit reject_rl; /* rejection log lines; ingest thread only */
    struct alarm_engine *alarm; /* alarms (#7): made by notify_start, used by store */
};

#endif

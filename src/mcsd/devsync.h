/* devsync.h - the registry thread: LISTEN mcs_device on its own PostgreSQL
 * connection and apply each change to the in-memory registry, so that a
 * calibration edit is used for the next message (R-PR-2); refreshes the
 * calib:{sn} troubleshooting keys in Redis (R-ST-7, R-OP-5). After any
 * reconnect it reloads the whole table (notifications may have been missed).
 * Owns its PostgreSQL and Redis connections. Thread: its own. */
#ifndef MCS_DEVSYNC_H
#define MCS_DEVSYNC_H

#include "mcsd.h"

struct mcs_devsync;

/* Loads the registry once (blocking, retrying until the database answers or
 * d->stopping), then starts the thread. Returns 0 or a negative code. */
int devsync_start(struct mcsd *d, struct mcs_devsync **out);
void devsync_stop(struct mcs_devsync *s);

#endif

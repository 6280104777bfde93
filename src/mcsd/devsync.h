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

/* Loads the registry once, then starts the thread. Returns 0, MCS_EAGAIN
 * when the database cannot be reached (the caller waits and calls again),
 * or another negative code. Besides NOTIFY, the thread reloads the whole
 * registry every REGISTRY_RELOAD_S and after a failed single-device reload,
 * so a change committed across a database hiccup still arrives. */
int devsync_start(struct mcsd *d, struct mcs_devsync **out);
/* Joins the thread (it ends on d->stopping) and frees. Returns
 * MCS_ETIMEDOUT, leaving it, when it has not ended by deadline_ms. */
int devsync_stop(struct mcs_devsync *s, int64_t deadline_ms);

#endif

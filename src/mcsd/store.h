/* store.h - the store thread: journal → PostgreSQL (batch.c: one
 * transaction per batch with the journal checkpoint) → live state (mirror.c:
 * registry, Redis), plus the periodic duties that need its connections:
 * metrics, per-device statistics (devstats.c), partitions ahead of time,
 * offline expiry. A database outage only stops
 * this thread's progress; ingest keeps journaling (R-ST-4 spool).
 * Owns its PostgreSQL and Redis connections. Thread: its own. */
#ifndef MCS_STORE_H
#define MCS_STORE_H

#include "mcsd.h"

#include <pthread.h>

struct mcs_store;

/* Starts the thread. Returns 0 or MCS_ENOMEM. */
int store_start(struct mcsd *d, struct mcs_store **out);
/* Waits for the thread to drain (when d->ingest_done is set it stores what
 * the journal holds, for at most 10 s while the database is up; at once
 * without one) and frees it. Returns MCS_ETIMEDOUT, leaving the thread,
 * when it is still busy at deadline_ms (mcs_mono_ms clock). */
int store_join(struct mcs_store *s, int64_t deadline_ms);

#endif

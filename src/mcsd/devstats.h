/* devstats.h - writes the registry's per-device statistics (status,
 * last_seen, received/lost counts, battery, signal, firmware, last error
 * code) to the devices table, every DEVICE_FLUSH_S, in one statement per
 * 5000 devices (unnest arrays). R-PR-4, R-MQ-5.
 * Owns its snapshot buffer. Thread: the store thread. */
#ifndef MCS_DEVSTATS_H
#define MCS_DEVSTATS_H

#include "registry.h"

#include <libpq-fe.h>

struct mcs_devstats {
    struct mcs_device_stat *snap;
};

int devstats_init(struct mcs_devstats *s);
void devstats_cleanup(struct mcs_devstats *s);

/* Writes what changed since the last call; on failure the deltas are given
 * back to the registry for the next try. Returns 0 or MCS_EDB. */
int devstats_flush(struct mcs_devstats *s, struct mcs_registry *reg, PGconn *pg);

#endif

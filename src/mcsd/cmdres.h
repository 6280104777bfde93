/* cmdres.h - the life of device commands as mcsd sees it (issue #20): the
 * results devices report on {prefix}/{sn}/status, a device coming back
 * online (its commands' deadlines start), and commands that expired. The
 * ingest thread queues; the store thread writes to device_commands.
 * Owns its bounded queue. Must not touch the journal or the alarm engine. */
#ifndef MCS_CMDRES_H
#define MCS_CMDRES_H

#include "payload.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct mcs_cmdres_item {
    char sn[MCS_SN_MAX + 1];
    int64_t recv_s;       /* when mcsd received it (server clock) */
    struct mcs_status st; /* st.result "" : the device came online */
};

struct mcs_cmdres {
    pthread_mutex_t lock;
    struct mcs_cmdres_item *q;
    int n, cap;
    _Atomic uint64_t dropped; /* queue full: counted, logged */
    _Atomic uint64_t recorded;
};

/* cap: most items held between two flushes. 0 or MCS_ENOMEM. */
int cmdres_init(struct mcs_cmdres *c, int cap);
void cmdres_cleanup(struct mcs_cmdres *c);

/* Queues a status message of sn that carries a command result or says
 * "online" (any thread). 0, or MCS_EFULL (counted in dropped). */
int cmdres_push(struct mcs_cmdres *c, const char *sn, const struct mcs_status *st,
                int64_t recv_s);

/* Store thread: writes the queued items (results matched by id, or for a
 * device that sends none, the newest open command of that name; an answer
 * to a broadcast gets its own row), starts the deadline of the commands a
 * device held while offline, and marks the overdue ones expired. Items that
 * fail to write are put back for the next call. 0 or MCS_EDB. */
int cmdres_flush(struct mcs_cmdres *c, PGconn *pg);

#endif

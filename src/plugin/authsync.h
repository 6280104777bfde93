/* authsync.h - the mcs_auth plugin's sync thread (authsync.c): keeps the
 * device table current from PostgreSQL, writes UNKNOWN_DEVICE alarms,
 * publishes the counters to Redis and keeps the registry snapshot.
 * It talks to the broker's thread only through the mailboxes of struct
 * authsync_link (items in authmsg.h) and never calls the broker side.
 * Thread: authsync_start/stop on the broker's thread; the rest its own. */
#ifndef MCS_AUTHSYNC_H
#define MCS_AUTHSYNC_H

#include "authmsg.h"
#include "authopt.h"
#include "devtab.h"
#include "mbox.h"

/* What the broker side lends the sync thread; everything outlives it. */
struct authsync_link {
    const struct mcs_auth_opts *opt; /* read-only */
    struct devtab *devs;             /* written by sync, read by the broker */
    struct mbox *kicks;              /* sync -> broker: struct auth_kick */
    struct mbox *logs;               /* sync -> broker: struct auth_logline */
    struct mbox *unknown;            /* broker -> sync: struct auth_unknown */
    struct mbox *ctl;                /* broker -> sync: struct auth_ctl */
};

struct authsync;

/* Starts the sync thread. Before returning it fills the device table: from
 * the snapshot file when there is one (fast restarts; the database then
 * refreshes it at once in the background), else by one synchronous
 * database load (bounded by the connect timeout). A database that is down
 * is not an error: the thread keeps retrying. *out receives the thread's
 * state. Returns 0 or MCS_ENOMEM. */
int authsync_start(const struct authsync_link *link, struct authsync **out);

/* Stops and joins the sync thread, saves the snapshot if it changed, frees
 * its state. NULL is a no-op. */
void authsync_stop(struct authsync *s);

#endif

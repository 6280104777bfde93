/* mcs_auth.h - the broker side of the mcs_auth plugin (issue #3, R-MQ-6,
 * R-MQ-7): the context of the callbacks (mcs_auth.c) that run on the
 * broker's thread. The plugin's own sync thread (authsync.h), which talks to
 * PostgreSQL and Redis, is lent only the device table (devtab, one mutex),
 * the four mailboxes (mbox, one mutex each) and the read-only options; the
 * two sides never call each other. Everything slow (database, Redis, the
 * snapshot file) happens on the sync thread; the broker's thread never
 * waits for the network.
 * Owns struct mcs_auth. Thread: as stated per field. */
#ifndef MCS_AUTH_H
#define MCS_AUTH_H

#include "addrset.h"
#include "authmsg.h"
#include "authopt.h"
#include "authsync.h"
#include "authz.h"
#include "devtab.h"
#include "mbox.h"
#include "pwverify.h"
#include "vbudget.h"

#include <stdint.h>

#define AUTH_INC(a, field) ((a)->ctr.field++)

struct mcs_auth {
    struct mcs_auth_opts opt;      /* read-only after init */
    struct authz_rules rules;      /* read-only after init */
    struct authz_limits lim;       /* read-only after init */
    struct devtab devs;            /* written by sync, read by broker */
    struct pwverify worker;        /* broker thread only */
    struct pwverify admin;         /* broker thread only */
    struct pwverify mcsd;          /* broker thread only */
    struct vbudget budget;         /* broker thread only: Argon2 checks per address */
    struct addrset internal;       /* read-only after init */
    struct mbox kicks;             /* sync -> broker */
    struct mbox logs;              /* sync -> broker */
    struct mbox unknown;           /* broker -> sync */
    struct mbox ctl;               /* broker -> sync: counters, reload requests */
    struct auth_counters ctr;      /* broker thread only; copies go to sync */
    struct auth_counters ctr_sent; /* broker thread: the last copy sent */
    int reload_pending;            /* broker thread: a reload not yet in ctl */
    int64_t next_ctl_ms;           /* broker thread: next counters copy */
    struct authsync *sync;         /* the sync thread, opaque */
    void *plugin_id;               /* mosquitto_plugin_id_t *, broker thread */
    int64_t log_next_ms;           /* broker thread: refusal log rate limit */
    uint64_t log_suppressed;       /* broker thread */
};

#endif

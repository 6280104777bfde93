/* authmsg.h - what the two threads of the mcs_auth plugin say to each other:
 * the items of the mailboxes (mbox.h) between the broker's thread
 * (mcs_auth.c) and the sync thread (authsync.c), and the counters each side
 * keeps. Neither side calls the other: besides these mailboxes they share
 * only the device table (devtab.h, its own mutex) and the read-only options.
 * Owns nothing. Thread: any (plain data). */
#ifndef MCS_AUTHMSG_H
#define MCS_AUTHMSG_H

#include "alarmlim.h"
#include "authz.h"
#include "devtab.h"

#include <stdint.h>

/* Counters of the broker's thread, published in Redis hash
 * mcs:metrics:broker (field = name) by the sync thread:
 * auth_<reason> for every refusal reason of authz.h, plus these. */
#define AUTH_BROKER_COUNTERS(X)                                                                    \
    X(auth_ok_device)                                                                              \
    X(auth_ok_worker)                                                                              \
    X(auth_ok_admin)                                                                               \
    X(auth_ok_mcsd)                                                                                \
    X(auth_refused)                                                                                \
    X(acl_denied)                                                                                  \
    X(acl_denied_write)                                                                            \
    X(acl_denied_subscribe)                                                                        \
    X(acl_denied_read)                                                                             \
    X(acl_denied_disabled)                                                                         \
    X(kicks)                                                                                       \
    X(verify_argon2)                                                                               \
    X(verify_cached)                                                                               \
    X(verify_limited_addr)                                                                         \
    X(verify_limited_total)

/* Counters of the sync thread (its own, published alongside). */
#define AUTH_SYNC_COUNTERS(X)                                                                      \
    X(alarms_raised)                                                                               \
    X(alarms_suppressed)                                                                           \
    X(alarm_queue_dropped)                                                                         \
    X(registry_full_loads)                                                                         \
    X(registry_updates)                                                                            \
    X(log_dropped)

struct auth_counters {
    uint64_t auth[AUTHZ_R_COUNT]; /* by reason; [AUTHZ_R_OK] = accepted */
#define AUTH_CTR_FIELD(name) uint64_t name;
    AUTH_BROKER_COUNTERS(AUTH_CTR_FIELD)
#undef AUTH_CTR_FIELD
};

/* sync -> broker: the username of a device to disconnect. */
struct auth_kick {
    char username[8 + DEVTAB_SN_MAX + 1];
};

/* sync -> broker: a log line, written by the broker's thread. */
struct auth_logline {
    int level; /* MOSQ_LOG_* */
    char text[300];
};

/* broker -> sync: an unknown-SN attempt (right password, SN not
 * registered). */
struct auth_unknown {
    char sn[DEVTAB_SN_MAX + 1];
    char addr[ALARMLIM_ADDR_MAX];
};

/* broker -> sync: a copy of the broker's counters (the latest one wins)
 * and, when reload is set, a request for a full registry reload (SIGHUP). */
struct auth_ctl {
    int reload;
    struct auth_counters ctr;
};

#endif

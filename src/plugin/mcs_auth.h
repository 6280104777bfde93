/* mcs_auth.h - the state shared by the two threads of the mcs_auth broker
 * plugin (issue #3, R-MQ-6, R-MQ-7): the broker's thread, which runs the
 * callbacks (mcs_auth.c), and the plugin's own sync thread (authsync.c),
 * which talks to PostgreSQL and Redis. They share only: the device table
 * (devtab, one mutex), three mailboxes (mbox, one mutex each), the counters
 * (atomics) and a few atomic flags. Everything slow (database, Redis, the
 * snapshot file) happens on the sync thread; the broker's thread never
 * waits for the network.
 * Owns struct mcs_auth. Thread: as stated per field. */
#ifndef MCS_AUTH_H
#define MCS_AUTH_H

#include "alarmlim.h"
#include "authopt.h"
#include "authz.h"
#include "devtab.h"
#include "mbox.h"
#include "pwverify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Counters published in Redis hash mcs:metrics:broker (field = name).
 * auth_<reason> for every refusal reason of authz.h, plus these. */
#define AUTH_EXTRA_COUNTERS(X)                                                                     \
    X(auth_ok_device)                                                                              \
    X(auth_ok_worker)                                                                              \
    X(auth_ok_admin)                                                                               \
    X(auth_refused)                                                                                \
    X(acl_denied)                                                                                  \
    X(acl_denied_write)                                                                            \
    X(acl_denied_subscribe)                                                                        \
    X(acl_denied_read)                                                                             \
    X(acl_denied_disabled)                                                                         \
    X(kicks)                                                                                       \
    X(verify_argon2)                                                                               \
    X(verify_cached)                                                                               \
    X(alarms_raised)                                                                               \
    X(alarms_suppressed)                                                                           \
    X(alarm_queue_dropped)                                                                         \
    X(registry_full_loads)                                                                         \
    X(registry_updates)                                                                            \
    X(log_dropped)

struct auth_counters {
    _Atomic uint64_t auth[AUTHZ_R_COUNT]; /* by reason; [AUTHZ_R_OK] = accepted */
#define AUTH_CTR_FIELD(name) _Atomic uint64_t name;
    AUTH_EXTRA_COUNTERS(AUTH_CTR_FIELD)
#undef AUTH_CTR_FIELD
};

#define AUTH_INC(a, field) atomic_fetch_add_explicit(&(a)->ctr.field, 1, memory_order_relaxed)

/* A kick request: the username of a device to disconnect. */
struct auth_kick {
    char username[8 + DEVTAB_SN_MAX + 1];
};

/* A log line from the sync thread, written by the broker's thread. */
struct auth_logline {
    int level; /* MOSQ_LOG_* */
    char text[300];
};

/* An unknown-SN attempt (right password, SN not registered). */
struct auth_unknown {
    char sn[DEVTAB_SN_MAX + 1];
    char addr[ALARMLIM_ADDR_MAX];
};

struct authsync; /* authsync.c */

struct mcs_auth {
    struct mcs_auth_opts opt;    /* read-only after init */
    struct authz_rules rules;    /* read-only after init */
    struct authz_limits lim;     /* read-only after init */
    struct devtab devs;          /* written by sync, read by broker */
    struct pwverify worker;      /* broker thread only */
    struct pwverify admin;       /* broker thread only */
    struct mbox kicks;           /* sync -> broker */
    struct mbox logs;            /* sync -> broker */
    struct mbox unknown;         /* broker -> sync */
    struct auth_counters ctr;    /* any */
    atomic_int stopping;         /* set by cleanup */
    atomic_int reload_requested; /* set by the RELOAD event (SIGHUP) */
    atomic_int db_up, redis_up;  /* written by sync */
    struct authsync *sync;       /* the sync thread's own state */
    void *plugin_id;             /* mosquitto_plugin_id_t *, broker thread */
    int64_t log_next_ms;         /* broker thread: refusal log rate limit */
    uint64_t log_suppressed;     /* broker thread */
};

/* Starts the sync thread. Before returning it fills the device table: from
 * the snapshot file when there is one (fast restarts; the database then
 * refreshes it at once in the background), else by one synchronous
 * database load (bounded by the connect timeout). A database that is down
 * is not an error: the thread keeps retrying. Returns 0 or MCS_ENOMEM.
 * Broker thread, from mosquitto_plugin_init. */
int authsync_start(struct mcs_auth *a);

/* Stops and joins the sync thread, frees its state. NULL-safe. Broker
 * thread, from mosquitto_plugin_cleanup. */
void authsync_stop(struct mcs_auth *a);

/* Queues a log line for the broker's thread (sync thread). Dropped, and
 * counted as log_dropped, when the mailbox is full. */
void auth_log_queued(struct mcs_auth *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

/* authz.h - the identity and access rules of the broker plugin (R-MQ-6),
 * as pure functions: who a CONNECT claims to be, whether its shape is
 * acceptable, and which topics each role may publish, subscribe and read.
 * Owns nothing; knows nothing about Mosquitto, the registry or passwords.
 * Thread: any (no state; struct authz_rules is read-only after init). */
#ifndef MCS_AUTHZ_H
#define MCS_AUTHZ_H

#include <stddef.h>

#define AUTHZ_SN_MAX 32
#define AUTHZ_DEVICE_USER_PREFIX "device_"
#define AUTHZ_WORKER_USER "worker"
#define AUTHZ_ADMIN_USER "admin"
#define AUTHZ_MCSD_USER "mcsd"
#define AUTHZ_MCSD_CLIENTID_PREFIX "mcsd-" /* default of authz_limits.mcsd_prefix */
#define AUTHZ_MCSD_GROUP "mcsd"            /* default share group of mcsd */

enum authz_role {
    AUTHZ_NONE = 0,
    AUTHZ_DEVICE,
    AUTHZ_WORKER,
    AUTHZ_ADMIN,
    AUTHZ_MCSD, /* the mcsd instances: the worker's rights plus their share group */
};

/* The access kinds of an ACL check (values as Mosquitto's MOSQ_ACL_*). */
enum authz_access {
    AUTHZ_READ = 1,        /* a message is about to be delivered to the client */
    AUTHZ_WRITE = 2,       /* the client publishes (also its Last Will, when sent) */
    AUTHZ_SUBSCRIBE = 4,   /* the client subscribes to a filter (maybe $share/...) */
    AUTHZ_UNSUBSCRIBE = 8, /* always allowed: dropping rights is harmless */
};

/* Why a connection is refused; X(name, counter suffix). AUTHZ_R_OK is 0.
 * Identity/shape reasons come from authz_identify(); the others are decided
 * by the caller with the registry and the credentials:
 *   no_credentials  no or empty username or password
 *   bad_input       too long, not UTF-8, control bytes, an invalid SN (e.g.
 *                   SQL-looking)
 *   unknown_user    neither device_{sn}, worker nor admin
 *   clientid        a client id the user may not use
 *   bad_password    wrong password
 *   unknown_sn      right device password, SN not in the registry (R-MQ-7)
 *   disabled        right device password, device disabled
 *   no_registry     the registry was never loaded (database down at start
 *                   and no snapshot)
 *   rate_limited    too many slow (Argon2) password checks right now
 *   not_configured  worker/admin/mcsd login while no hash is configured
 *   not_internal    worker/admin/mcsd login from an address that is not in
 *                   internal_addresses (e.g. over the public listener) */
#define AUTHZ_REASONS(X)                                                                           \
    X(OK, "ok")                                                                                    \
    X(NO_CREDENTIALS, "no_credentials")                                                            \
    X(BAD_INPUT, "bad_input")                                                                      \
    X(UNKNOWN_USER, "unknown_user")                                                                \
    X(CLIENTID, "clientid")                                                                        \
    X(BAD_PASSWORD, "bad_password")                                                                \
    X(UNKNOWN_SN, "unknown_sn")                                                                    \
    X(DISABLED, "disabled")                                                                        \
    X(NO_REGISTRY, "no_registry")                                                                  \
    X(RATE_LIMITED, "rate_limited")                                                                \
    X(NOT_CONFIGURED, "not_configured")                                                            \
    X(NOT_INTERNAL, "not_internal")

enum authz_reason {
#define AUTHZ_R_ENUM(name, str) AUTHZ_R_##name,
    AUTHZ_REASONS(AUTHZ_R_ENUM)
#undef AUTHZ_R_ENUM
        AUTHZ_R_COUNT
};

/* Returns the counter name of a reason ("bad_input"), "?" when out of range. */
const char *authz_reason_name(enum authz_reason r);

/* Upper bounds of the CONNECT fields (bytes). Anything longer is refused as
 * bad input before any other work is done. */
struct authz_limits {
    size_t max_username;
    size_t max_password;
    size_t max_clientid;
    const char *mcsd_prefix; /* client-id prefix of mcsd; NULL: "mcsd-" */
};

/* Checks the shape of a CONNECT's credentials and classifies the user.
 * username/password/clientid may be NULL. On AUTHZ_R_OK, *role is set and,
 * for a device, sn (size AUTHZ_SN_MAX + 1) holds its serial number.
 * Client id rules (one device must not pose as another, or take over
 * another's session): a device's client id must equal its username
 * `device_{sn}` exactly; client ids starting with `device_` are reserved for
 * devices, so worker, admin and mcsd may not use them. User `mcsd` must use
 * a client id of lim->mcsd_prefix and at least one more byte (its
 * INSTANCE_ID, e.g. `mcsd-1`), and that prefix is reserved for it: the
 * worker password alone cannot take an instance's persistent session.
 * The SN `broadcast` is not a device (mcs_sn_valid): bad_input.
 * Returns NO_CREDENTIALS, BAD_INPUT, UNKNOWN_USER, CLIENTID or OK. */
enum authz_reason authz_identify(const struct authz_limits *lim, const char *username,
                                 const char *password, const char *clientid, enum authz_role *role,
                                 char sn[AUTHZ_SN_MAX + 1]);

/* The role of an already-authenticated username (and its sn for a device),
 * for ACL checks; AUTHZ_NONE for anything else (NULL too). */
enum authz_role authz_role_of(const char *username, const char **sn, size_t *snlen);

/* Returns 1 when s[0..len) is well-formed UTF-8 without control characters
 * (U+0000..U+001F, U+007F..U+009F), overlong forms or surrogates; else 0. */
int authz_utf8_ok(const char *s, size_t len);

/* The topic rules for one prefix (R-MQ-1: `mcs` by default, configurable). */
struct authz_rules {
    char prefix[64];
    size_t plen;
    char worker_read[2][96];  /* {p}/+/up, {p}/+/status */
    char worker_write[2][96]; /* {p}/+/cmd, {p}/broadcast/cmd */
    char admin_all[96];       /* {p}/# */
    char sys_all[8];          /* $SYS/# */
    char broadcast_cmd[96];   /* {p}/broadcast/cmd */
    char mcsd_group[64];      /* share group only mcsd may subscribe in */
};

/* Prepares the rules for prefix (1..63 bytes, no wildcards, no leading or
 * trailing '/'), with mcsd's share group "mcsd". Returns 0 or MCS_EINVAL. */
int authz_rules_init(struct authz_rules *r, const char *prefix);

/* Sets mcsd's share group (MQTT_SHARE_GROUP: 1..63 bytes, no '/', '+',
 * '#'). Returns 0 or MCS_EINVAL. */
int authz_rules_set_group(struct authz_rules *r, const char *group);

/* Decides one ACL check. For AUTHZ_DEVICE, sn[0..snlen) is the device's serial.
 * topic is the message topic (READ/WRITE) or the subscription filter, which
 * may be a shared subscription `$share/<group>/<filter>` (SUBSCRIBE).
 *  - device: WRITE {p}/{sn}/up and {p}/{sn}/status; SUBSCRIBE/READ
 *    {p}/{sn}/cmd and {p}/broadcast/cmd; nothing else (no wildcards).
 *  - worker: READ/SUBSCRIBE within {p}/+/up and {p}/+/status; WRITE
 *    {p}/+/cmd and {p}/broadcast/cmd; but never SUBSCRIBE in mcsd's share
 *    group ($share/{mcsd_group}/...), which would take a share of the
 *    readings away from the instances.
 *  - mcsd: as the worker, and its share group too.
 *  - admin: everything within {p}/#.
 *  - worker, mcsd and admin also READ/SUBSCRIBE within $SYS/# (the broker's own
 *    statistics, no device data): mcsd reports the broker's connected
 *    clients and dropped messages in its health (R-API-8). Never WRITE.
 * UNSUBSCRIBE is always allowed. Returns 1 allow, 0 deny. */
int authz_acl(const struct authz_rules *r, enum authz_role role, const char *sn, size_t snlen,
              const char *topic, int access);

/* Returns 1 when every topic the MQTT filter matches is also matched by
 * pattern (both may use + and #; a topic without wildcards is a filter
 * matching itself). Returns 0 otherwise, or for malformed wildcards. */
int authz_filter_within(const char *filter, const char *pattern);

/* For `$share/<group>/<filter>` returns a pointer to <filter>; for a
 * subscription without the $share prefix returns it unchanged; returns NULL
 * for a malformed shared subscription (empty group, wildcard in the group,
 * nothing after the group). */
const char *authz_unshare(const char *sub);

#endif

/* mcs_auth.c - the MCS-IoT Mosquitto 2 plugin (v5 plugin API): device,
 * worker and admin authentication (MOSQ_EVT_BASIC_AUTH) and topic rights
 * (MOSQ_EVT_ACL_CHECK) as R-MQ-6 states them, against a device registry
 * kept current from PostgreSQL by the plugin's sync thread (authsync.c).
 * Owns the plugin's lifetime and its callbacks. Must not block: every
 * callback only reads memory (the device table under its mutex, the
 * mailboxes); the one slow operation, an Argon2 verification of a
 * worker/admin/mcsd password, is done only for internal client addresses
 * (addrset.h), remembered (pwverify.h) and budgeted per address
 * (vbudget.h). It never calls the sync thread's code beyond start/stop:
 * they talk through the mailboxes (authmsg.h).
 * Thread: the broker's (all callbacks, init and cleanup). */
#include "mcs_auth.h"
#include "devcred.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KICK_BOX 4096
#define LOG_BOX 256
#define UNKNOWN_BOX 1024
#define CTL_BOX 64
#define CTL_EVERY_MS 20   /* counters copied to the sync thread at most this often */
#define BUDGET_ADDRS 4096 /* client addresses with a verification budget of their own */
#define LOGS_PER_TICK 64
#define KICKS_PER_TICK 256
#define REFUSAL_LOG_BURST 20     /* refusal lines at once at most ... */
#define REFUSAL_LOG_EVERY_MS 500 /* ... then one per this interval */

/* Copies a client-supplied string into a printable, bounded form for the
 * log (non-printable and non-ASCII bytes escaped), or "-" for NULL. */
static const char *shown(const char *s, char *buf, size_t n)
{
    if(!s)
        return "-";
    mcs_json_escape(buf, n, s, 64);
    return buf;
}

/* Whether a refusal may be logged now (token bucket, broker thread). */
static int log_allowed(struct mcs_auth *a)
{
    int64_t now = mcs_mono_ms();
    if(a->log_next_ms == 0)
        a->log_next_ms = now - REFUSAL_LOG_BURST * REFUSAL_LOG_EVERY_MS;
    if(a->log_next_ms < now - REFUSAL_LOG_BURST * REFUSAL_LOG_EVERY_MS)
        a->log_next_ms = now - REFUSAL_LOG_BURST * REFUSAL_LOG_EVERY_MS;
    if(a->log_next_ms > now) {
        a->log_suppressed++;
        return 0;
    }
    a->log_next_ms += REFUSAL_LOG_EVERY_MS;
    return 1;
}

static enum authz_reason check_device(struct mcs_auth *a, struct mosquitto *client, const char *sn,
                                      const char *password)
{
    char want[17];
    enum devtab_state st;
    int ok;

    if(mcs_device_password(sn, a->opt.cfg.vendor_secret, want) != 0)
        return AUTHZ_R_BAD_INPUT;
    ok = strlen(password) == 16 && sodium_memcmp(want, password, 16) == 0;
    sodium_memzero(want, sizeof(want));
    /* The password first: only a device that knows it (i.e. one of ours,
     * made with the vendor secret) can be "unknown" and raise an alarm;
     * guessing strangers stay bad_password and cannot flood alarm_logs. */
    if(!ok)
        return AUTHZ_R_BAD_PASSWORD;
    if(!devtab_loaded(&a->devs))
        return AUTHZ_R_NO_REGISTRY;
    st = devtab_get(&a->devs, sn, strlen(sn));
    if(st == DEVTAB_UNKNOWN) {
        struct auth_unknown u;
        const char *addr = mosquitto_client_address(client);
        memset(&u, 0, sizeof(u));
        memcpy(u.sn, sn, strlen(sn) + 1);
        if(addr)
            mcs_json_escape(u.addr, sizeof(u.addr), addr, sizeof(u.addr) - 1);
        mbox_put(&a->unknown, &u); /* full: counted as alarm_queue_dropped */
        return AUTHZ_R_UNKNOWN_SN;
    }
    return st == DEVTAB_ENABLED ? AUTHZ_R_OK : AUTHZ_R_DISABLED;
}

/* worker, admin, mcsd: only from internal addresses; the memory first,
 * then an Argon2id verification within the address's and the total budget. */
static enum authz_reason check_principal(struct mcs_auth *a, struct mosquitto *client,
                                         struct pwverify *v, const char *password)
{
    const char *addr = mosquitto_client_address(client);
    unsigned char key[16];
    size_t len = strlen(password);
    int64_t now = mcs_mono_ms();
    enum pwv_result r;

    if(addr_parse(addr, key) || !addrset_has(&a->internal, key))
        return AUTHZ_R_NOT_INTERNAL;
    r = pwv_recall(v, password, len, now);
    if(r == PWV_OK || r == PWV_BAD)
        AUTH_INC(a, verify_cached);
    if(r == PWV_UNKNOWN) {
        switch(vbudget_take(&a->budget, key, now)) {
        case VB_OK:
            AUTH_INC(a, verify_argon2);
            r = pwv_verify(v, password, len, now);
            if(r == PWV_OK)
                vbudget_refund(&a->budget, key);
            break;
        case VB_ADDR:
            AUTH_INC(a, verify_limited_addr);
            r = PWV_LIMITED;
            break;
        default:
            AUTH_INC(a, verify_limited_total);
            r = PWV_LIMITED;
            break;
        }
    }
    switch(r) {
    case PWV_OK:
        return AUTHZ_R_OK;
    case PWV_BAD:
        return AUTHZ_R_BAD_PASSWORD;
    case PWV_LIMITED:
        return AUTHZ_R_RATE_LIMITED;
    default:
        return AUTHZ_R_NOT_CONFIGURED;
    }
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_basic_auth *ev = event_data;
    struct mcs_auth *a = userdata;
    const char *cid = mosquitto_client_id(ev->client);
    enum authz_role role;
    enum authz_reason r;
    char sn[AUTHZ_SN_MAX + 1];

    (void)event;
    r = authz_identify(&a->lim, ev->username, ev->password, cid, &role, sn);
    if(r == AUTHZ_R_OK) {
        if(role == AUTHZ_DEVICE)
            r = check_device(a, ev->client, sn, ev->password);
        else
            r = check_principal(a, ev->client,
                                role == AUTHZ_WORKER ? &a->worker
                                : role == AUTHZ_MCSD ? &a->mcsd
                                                     : &a->admin,
                                ev->password);
    }
    a->ctr.auth[r]++;
    if(r == AUTHZ_R_OK) {
        if(role == AUTHZ_DEVICE)
            AUTH_INC(a, auth_ok_device);
        else if(role == AUTHZ_WORKER)
            AUTH_INC(a, auth_ok_worker);
        else if(role == AUTHZ_MCSD)
            AUTH_INC(a, auth_ok_mcsd);
        else
            AUTH_INC(a, auth_ok_admin);
        return MOSQ_ERR_SUCCESS;
    }
    AUTH_INC(a, auth_refused);
    if(log_allowed(a)) {
        char ub[400], cb[400];
        const char *addr = mosquitto_client_address(ev->client);
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "mcs_auth: refused %s: user '%s' client '%s' from %s (%llu lines "
                             "suppressed before)",
                             authz_reason_name(r), shown(ev->username, ub, sizeof(ub)),
                             shown(cid, cb, sizeof(cb)), addr ? addr : "?",
                             (unsigned long long)a->log_suppressed);
        a->log_suppressed = 0;
    }
    return MOSQ_ERR_AUTH;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *ev = event_data;
    struct mcs_auth *a = userdata;
    const char *user = mosquitto_client_username(ev->client), *sn;
    size_t snlen;
    enum authz_role role = authz_role_of(user, &sn, &snlen);
    int allow;

    (void)event;
    allow = authz_acl(&a->rules, role, sn, snlen, ev->topic, ev->access);
    if(allow && role == AUTHZ_DEVICE && ev->access != MOSQ_ACL_UNSUBSCRIBE &&
       devtab_get(&a->devs, sn, snlen) != DEVTAB_ENABLED) {
        /* Disabled (or deleted) while connected: refused at once, before
         * the kick queued by the sync thread has taken it off. */
        allow = 0;
        AUTH_INC(a, acl_denied_disabled);
    }
    if(allow)
        return MOSQ_ERR_SUCCESS;
    AUTH_INC(a, acl_denied);
    if(ev->access == MOSQ_ACL_WRITE)
        AUTH_INC(a, acl_denied_write);
    else if(ev->access == MOSQ_ACL_SUBSCRIBE)
        AUTH_INC(a, acl_denied_subscribe);
    else if(ev->access == MOSQ_ACL_READ)
        AUTH_INC(a, acl_denied_read);
    /* Deliveries (READ) are not logged: a broadcast to a topic some
     * subscriber may not read would otherwise write a line per client. */
    if(ev->access != MOSQ_ACL_READ && log_allowed(a)) {
        char ub[400], tb[400];
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "mcs_auth: denied %s of '%s' to user '%s' (%llu lines suppressed "
                             "before)",
                             ev->access == MOSQ_ACL_WRITE ? "publish" : "subscribe",
                             shown(ev->topic, tb, sizeof(tb)), shown(user, ub, sizeof(ub)),
                             (unsigned long long)a->log_suppressed);
        a->log_suppressed = 0;
    }
    return MOSQ_ERR_ACL_DENIED;
}

/* Hands the sync thread a copy of the counters (for Redis) and a pending
 * reload request; a full box keeps the request for the next tick. */
static void ctl_send(struct mcs_auth *a)
{
    struct auth_ctl c;
    int64_t now = mcs_mono_ms();

    /* At most one copy per CTL_EVERY_MS, so that the box (drained every
     * 100 ms) never fills and its newest item is always the latest. */
    if(!a->reload_pending &&
       (now < a->next_ctl_ms || !memcmp(&a->ctr, &a->ctr_sent, sizeof(a->ctr))))
        return;
    memset(&c, 0, sizeof(c));
    c.reload = a->reload_pending;
    c.ctr = a->ctr;
    if(mbox_put(&a->ctl, &c) == 0) {
        a->ctr_sent = a->ctr;
        a->reload_pending = 0;
        a->next_ctl_ms = now + CTL_EVERY_MS;
    }
}

/* Runs on the broker's thread about every 100 ms: performs what the sync
 * thread asked for. */
static int on_tick(int event, void *event_data, void *userdata)
{
    struct mcs_auth *a = userdata;
    struct auth_logline l;
    struct auth_kick k;

    (void)event;
    (void)event_data;
    for(int i = 0; i < LOGS_PER_TICK && mbox_take(&a->logs, &l); i++)
        mosquitto_log_printf(l.level, "%s", l.text);
    for(int i = 0; i < KICKS_PER_TICK && mbox_take(&a->kicks, &k); i++) {
        /* No Will: the device did not lose its link, it lost its right to
         * be here (and the ACL would refuse its Will anyway). */
        mosquitto_kick_client_by_username(k.username, false);
        AUTH_INC(a, kicks);
    }
    ctl_send(a);
    return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *event_data, void *userdata)
{
    struct mcs_auth *a = userdata;
    (void)event;
    (void)event_data;
    /* SIGHUP: re-read the whole registry. Options need a restart. */
    a->reload_pending = 1;
    ctl_send(a);
    return MOSQ_ERR_SUCCESS;
}

static const struct {
    int event;
    MOSQ_FUNC_generic_callback fn;
} callbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, on_basic_auth},
    {MOSQ_EVT_ACL_CHECK, on_acl_check},
    {MOSQ_EVT_TICK, on_tick},
    {MOSQ_EVT_RELOAD, on_reload},
};
#define NCALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

/* Frees a context; every part is safe to clean up when not set up. */
static void auth_free(struct mcs_auth *a, int registered)
{
    struct auth_logline l;

    if(!a)
        return;
    for(size_t i = 0; i < NCALLBACKS && i < (size_t)registered; i++)
        mosquitto_callback_unregister(a->plugin_id, callbacks[i].event, callbacks[i].fn, NULL);
    authsync_stop(a->sync);
    a->sync = NULL;
    if(a->logs.buf)
        while(mbox_take(&a->logs, &l))
            mosquitto_log_printf(l.level, "%s", l.text);
    mbox_cleanup(&a->kicks);
    mbox_cleanup(&a->logs);
    mbox_cleanup(&a->unknown);
    mbox_cleanup(&a->ctl);
    vbudget_cleanup(&a->budget);
    devtab_cleanup(&a->devs);
    pwv_cleanup(&a->worker);
    pwv_cleanup(&a->admin);
    pwv_cleanup(&a->mcsd);
    authopt_cleanup(&a->opt);
    free(a);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for(int i = 0; i < supported_version_count; i++)
        if(supported_versions[i] == 5)
            return 5;
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
                          struct mosquitto_opt *opts, int opt_count)
{
    struct mcs_auth *a = NULL;
    struct authopt_kv *kv = NULL;
    struct authsync_link link;
    char err[512];
    int rc = MOSQ_ERR_NOMEM, registered = 0;

    /* The shared code's own logger writes to stderr; inside the broker only
     * errors may go there (the broker's log is where operators look). */
    mcs_log_level = MCS_LOG_ERROR;
    if(sodium_init() < 0)
        goto out;
    a = calloc(1, sizeof(*a));
    kv = calloc(opt_count > 0 ? (size_t)opt_count : 1, sizeof(*kv));
    if(!a || !kv)
        goto out;
    a->plugin_id = identifier;
    for(int i = 0; i < opt_count; i++) {
        kv[i].key = opts[i].key;
        kv[i].value = opts[i].value;
    }
    rc = MOSQ_ERR_INVAL;
    if(authopt_parse(&a->opt, kv, opt_count, err, sizeof(err))) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "mcs_auth: %s", err);
        goto out;
    }
    if(authz_rules_init(&a->rules, a->opt.cfg.mqtt_prefix)) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "mcs_auth: invalid topic prefix '%s'",
                             a->opt.cfg.mqtt_prefix);
        goto out;
    }
    a->lim.max_username = (size_t)a->opt.max_username;
    a->lim.max_password = (size_t)a->opt.max_password;
    a->lim.max_clientid = (size_t)a->opt.max_clientid;
    a->lim.mcsd_prefix = a->opt.mcsd_clientid_prefix;
    if(authz_rules_set_group(&a->rules, a->opt.cfg.mqtt_share_group)) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "mcs_auth: invalid mqtt_share_group '%s'",
                             a->opt.cfg.mqtt_share_group);
        goto out;
    }
    if(addrset_parse(&a->internal, a->opt.internal_addresses, err, sizeof(err))) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "mcs_auth: %s", err);
        goto out;
    }
    if(pwv_init(&a->worker, a->opt.worker_hash, (int64_t)a->opt.verify_cache_s * 1000, 60000,
                a->opt.verify_per_s) ||
       pwv_init(&a->admin, a->opt.admin_hash, (int64_t)a->opt.verify_cache_s * 1000, 60000,
                a->opt.verify_per_s) ||
       pwv_init(&a->mcsd, a->opt.mcsd_hash, (int64_t)a->opt.verify_cache_s * 1000, 60000,
                a->opt.verify_per_s)) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "mcs_auth: worker_hash/admin_hash/mcsd_hash is not a "
                                           "valid Argon2id string (make one with `mcs "
                                           "hash-password`)");
        goto out;
    }
    if(!a->worker.hash[0] || !a->admin.hash[0] || !a->mcsd.hash[0])
        mosquitto_log_printf(MOSQ_LOG_WARNING,
                             "mcs_auth: no hash configured for:%s%s%s; that login is refused",
                             a->worker.hash[0] ? "" : " worker", a->admin.hash[0] ? "" : " admin",
                             a->mcsd.hash[0] ? "" : " mcsd");
    if(vbudget_init(&a->budget, a->opt.verify_per_addr_s, a->opt.verify_per_s, BUDGET_ADDRS))
        goto out;
    rc = MOSQ_ERR_NOMEM;
    if(devtab_init(&a->devs) || mbox_init(&a->kicks, sizeof(struct auth_kick), KICK_BOX) ||
       mbox_init(&a->logs, sizeof(struct auth_logline), LOG_BOX) ||
       mbox_init(&a->unknown, sizeof(struct auth_unknown), UNKNOWN_BOX) ||
       mbox_init(&a->ctl, sizeof(struct auth_ctl), CTL_BOX))
        goto out;
    link.opt = &a->opt;
    link.devs = &a->devs;
    link.kicks = &a->kicks;
    link.logs = &a->logs;
    link.unknown = &a->unknown;
    link.ctl = &a->ctl;
    if(authsync_start(&link, &a->sync))
        goto out;
    for(size_t i = 0; i < NCALLBACKS; i++) {
        rc = mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].fn, NULL, a);
        if(rc != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "mcs_auth: cannot register callback %d: %s",
                                 callbacks[i].event, mosquitto_strerror(rc));
            goto out;
        }
        registered++;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "mcs_auth: ready: prefix '%s', %zu devices (%s), internal addresses "
                         "%s",
                         a->rules.prefix, devtab_count(&a->devs),
                         devtab_loaded(&a->devs) == 1   ? "from the database"
                         : devtab_loaded(&a->devs) == 2 ? "from the snapshot"
                                                        : "none loaded yet",
                         a->opt.internal_addresses);
    *user_data = a;
    a = NULL;
    rc = MOSQ_ERR_SUCCESS;
out:
    if(a)
        auth_free(a, registered);
    free(kv);
    return rc;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
    (void)opts;
    (void)opt_count;
    auth_free(user_data, (int)NCALLBACKS);
    return MOSQ_ERR_SUCCESS;
}

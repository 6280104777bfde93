/* devsync.c - LISTEN/NOTIFY-driven registry updates (see devsync.h).
 * Owns its connections. Thread: its own. */
#include "devsync.h"
#include "cache.h"
#include "conn.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_REFRESH_MS (30 * 60 * 1000) /* calib:{sn} lives 1 h */

struct mcs_devsync {
    struct mcsd *d;
    pthread_t th;
    PGconn *pg;
    struct mcs_cache cache;
    int64_t next_refresh_ms;
    int64_t next_reload_ms; /* periodic full reload: the safety net */
    int need_reload;        /* a notified reload failed: reload everything */
    _Atomic int done;
};

/* Connects, LISTENs and loads the registry. Returns 0 or MCS_EDB. */
static int connect_and_load(struct mcs_devsync *s)
{
    char err[512];
    s->pg = mcs_pg_connect(s->d->cfg, "mcsd-devsync", err, sizeof(err));
    if(!s->pg) {
        LOG_W("devsync", "database unavailable", LS("error", err));
        return MCS_EDB;
    }
    /* LISTEN before loading: a change committed during the load is then
     * delivered afterwards instead of being lost in between. */
    if(mcs_pg_exec(s->pg, "LISTEN mcs_device", err, sizeof(err)) ||
       registry_load(&s->d->reg, s->pg)) {
        LOG_W("devsync", "registry load failed", LS("error", err));
        PQfinish(s->pg);
        s->pg = NULL;
        return MCS_EDB;
    }
    LOG_I("devsync", "registry loaded", LI("devices", registry_count(&s->d->reg)));
    s->next_refresh_ms = 0;
    s->next_reload_ms = mcs_mono_ms() + (int64_t)s->d->cfg->registry_reload_s * 1000;
    s->need_reload = 0;
    return 0;
}

/* A full reload on the open connection (a missed or failed NOTIFY is
 * caught up by it). A failure drops the connection: the next connect
 * reloads. */
static void full_reload(struct mcs_devsync *s, const char *why)
{
    if(registry_load(&s->d->reg, s->pg)) {
        LOG_W("devsync", "registry reload failed; reconnecting", LS("reason", why));
        PQfinish(s->pg);
        s->pg = NULL;
        return;
    }
    LOG_D("devsync", "registry reloaded", LS("reason", why),
          LI("devices", registry_count(&s->d->reg)));
    s->need_reload = 0;
    s->next_reload_ms = mcs_mono_ms() + (int64_t)s->d->cfg->registry_reload_s * 1000;
}

/* Writes calib:{sn} for every device, pipelined in chunks. */
static void refresh_calib_keys(struct mcs_devsync *s)
{
    struct mcs_registry *r = &s->d->reg;
    uint32_t n;
    if(!cache_ready(&s->cache))
        return;
    pthread_mutex_lock(&r->lock);
    n = r->n;
    pthread_mutex_unlock(&r->lock);
    for(uint32_t i = 0; i < n; i++) {
        char sn[MCS_SN_MAX + 1];
        struct mcs_calib c;
        int live;
        pthread_mutex_lock(&r->lock);
        memcpy(sn, r->dev[i].sn, sizeof(sn));
        c = r->dev[i].calib;
        live = !r->dev[i].deleted;
        pthread_mutex_unlock(&r->lock);
        if(live)
            cache_put_calib(&s->cache, sn, &c);
        if((i % 1000) == 999 && cache_flush(&s->cache))
            return;
    }
    cache_flush(&s->cache);
}

static void handle_notifies(struct mcs_devsync *s)
{
    PGnotify *n;
    while((n = PQnotifies(s->pg))) {
        char sn[MCS_SN_MAX + 1];
        snprintf(sn, sizeof(sn), "%s", n->extra);
        PQfreemem(n);
        if(registry_reload_one(&s->d->reg, s->pg, sn)) {
            /* The change is not lost: everything is reloaded below. */
            LOG_W("devsync", "device reload failed; reloading all", LS("sn", sn));
            s->need_reload = 1;
            continue;
        }
        LOG_I("devsync", "device changed", LS("sn", sn));
        if(cache_ready(&s->cache)) {
            struct mcs_calib c;
            cache_put_invalidate(&s->cache, sn);
            if(registry_get_calib(&s->d->reg, sn, &c) == 0)
                cache_put_calib(&s->cache, sn, &c);
            cache_flush(&s->cache);
        }
    }
}

static void *devsync_main(void *arg)
{
    struct mcs_devsync *s = arg;
    while(!atomic_load(&s->d->stopping)) {
        if(!s->pg) {
            if(connect_and_load(s)) {
                for(int i = 0; i < 40 && !atomic_load(&s->d->stopping); i++)
                    mcs_sleep_ms(50);
                continue;
            }
        }
        if(s->need_reload || mcs_mono_ms() >= s->next_reload_ms) {
            full_reload(s, s->need_reload ? "failed notification" : "periodic");
            if(!s->pg)
                continue;
        }
        if(mcs_mono_ms() >= s->next_refresh_ms) {
            refresh_calib_keys(s);
            s->next_refresh_ms = mcs_mono_ms() + CALIB_REFRESH_MS;
        }
        struct pollfd p = {PQsocket(s->pg), POLLIN, 0};
        int pr = poll(&p, 1, 500);
        if(pr < 0)
            continue;
        if(pr > 0 && !PQconsumeInput(s->pg)) {
            LOG_W("devsync", "database connection lost", LS("error", PQerrorMessage(s->pg)));
            PQfinish(s->pg);
            s->pg = NULL;
            continue;
        }
        handle_notifies(s);
    }
    atomic_store(&s->done, 1);
    return NULL;
}

int devsync_start(struct mcsd *d, struct mcs_devsync **out)
{
    struct mcs_devsync *s = calloc(1, sizeof(*s));
    if(!s)
        return MCS_ENOMEM;
    s->d = d;
    cache_init(&s->cache, d->cfg);
    /* The first load is synchronous: ingest must not start with an empty
     * registry, or every device would be refused as unknown. The caller
     * retries (and listens for a stop signal meanwhile). */
    if(connect_and_load(s)) {
        cache_cleanup(&s->cache);
        free(s);
        return MCS_EAGAIN;
    }
    if(pthread_create(&s->th, NULL, devsync_main, s)) {
        PQfinish(s->pg);
        free(s);
        return MCS_ENOMEM;
    }
    *out = s;
    return 0;
}

int devsync_stop(struct mcs_devsync *s, int64_t deadline_ms)
{
    if(!s)
        return 0;
    while(!atomic_load(&s->done) && mcs_mono_ms() < deadline_ms)
        mcs_sleep_ms(20);
    if(!atomic_load(&s->done))
        return MCS_ETIMEDOUT;
    pthread_join(s->th, NULL);
    if(s->pg)
        PQfinish(s->pg);
    cache_cleanup(&s->cache);
    free(s);
    return 0;
}

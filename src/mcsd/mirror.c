/* mirror.c - live state after a committed batch (see mirror.h).
 * Owns the newest-reading index and the deferred realtime writes.
 * Thread: the store thread. */
#include "mirror.h"
#include "err.h"
#include "timeutil.h"

#include <stdlib.h>
#include <string.h>

/* online:{sn} lives OFFLINE_AFTER_S (R-PR-3); rewriting it every 15 s at
 * most (a third of its life when that is shorter) keeps it alive with
 * margin while a fast reporter costs one write, not hundreds. */
#define ONLINE_REFRESH_S 15
/* realtime:{sn} at most twice a second per device: the dashboard reads it
 * once a second, and a device in 1 s debug mode is still written every time.
 * A newer reading held back meanwhile is written when its window opens
 * (struct mcs_rt_pending), so the key always ends on the newest reading. */
#define RT_WINDOW_MS 500

static uint32_t hash_sn32(const char sn[MCS_SN_MAX])
{
    uint32_t h = 2166136261u;
    for(int i = 0; i < MCS_SN_MAX && sn[i]; i++) {
        h ^= (unsigned char)sn[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t *rt_find(struct mcs_rt_pending *p, const char sn[MCS_SN_MAX])
{
    uint32_t mask = p->idx_cap - 1;
    if(!p->idx_cap)
        return NULL;
    for(uint32_t h = hash_sn32(sn) & mask;; h = (h + 1) & mask) {
        if(!p->idx[h] || !memcmp(p->items[p->idx[h] - 1].sn, sn, MCS_SN_MAX))
            return &p->idx[h];
    }
}

static int rt_reindex(struct mcs_rt_pending *p, uint32_t want)
{
    uint32_t cap = p->idx_cap ? p->idx_cap : 1024;
    while(cap <= 2 * want)
        cap *= 2;
    if(cap != p->idx_cap) {
        uint32_t *ni = calloc(cap, sizeof(*ni));
        if(!ni)
            return MCS_ENOMEM;
        free(p->idx);
        p->idx = ni;
        p->idx_cap = cap;
    }
    else
        memset(p->idx, 0, cap * sizeof(*p->idx));
    for(uint32_t i = 0; i < p->n; i++)
        *rt_find(p, p->items[i].sn) = i + 1;
    return 0;
}

/* Holds r back until its device's window opens. On allocation failure the
 * write is dropped (the next reading of the device writes the key). */
static void rt_put(struct mcs_rt_pending *p, const struct mcs_jrec *r)
{
    uint32_t *slot = rt_find(p, r->sn);
    if(slot && *slot) {
        p->items[*slot - 1] = *r;
        return;
    }
    if(p->n == p->cap) {
        uint32_t ncap = p->cap ? p->cap * 2 : 256;
        struct mcs_jrec *ni = realloc(p->items, ncap * sizeof(*ni));
        if(!ni)
            return;
        p->items = ni;
        p->cap = ncap;
    }
    p->items[p->n++] = *r;
    if(2 * p->n >= p->idx_cap) {
        if(rt_reindex(p, p->n))
            p->n--;
        return;
    }
    *rt_find(p, r->sn) = p->n;
}

/* A newer value was just written directly: forget the held one. */
static void rt_drop(struct mcs_rt_pending *p, const char sn[MCS_SN_MAX])
{
    uint32_t *slot = rt_find(p, sn);
    if(slot && *slot)
        p->items[*slot - 1].sn[0] = '\0'; /* tombstone: skipped and removed at flush */
}

/* Writes the held readings whose window has opened. */
void mirror_flush(struct mcs_mirror *m, struct mcsd *d, struct mcs_cache *c, int64_t now_ms)
{
    struct mcs_rt_pending *p = &m->rt;
    uint32_t keep = 0;
    if(!p->n || !cache_ready(c))
        return;
    for(uint32_t i = 0; i < p->n; i++) {
        const struct mcs_jrec *r = &p->items[i];
        char sn[MCS_SN_MAX + 1];
        if(!r->sn[0])
            continue;
        jrec_sn(r, sn);
        if(registry_rt_take(&d->reg, sn, now_ms, RT_WINDOW_MS))
            cache_put_reading(c, r, 1, 0, r->recv_us / 1000000);
        else
            p->items[keep++] = *r;
    }
    p->n = keep;
    rt_reindex(p, p->n);
    cache_send(c);
}

/* The s->newest slot of sn (0 inside when the batch has no reading of it). */
static const uint32_t *newest_slot(const struct mcs_mirror *m, const struct mcs_jrec *recs,
                                   const char sn[MCS_SN_MAX])
{
    uint32_t mask = m->newest_cap - 1;
    for(uint32_t h = hash_sn32(sn) & mask;; h = (h + 1) & mask)
        if(!m->newest[h] || !memcmp(recs[m->newest[h] - 1].sn, sn, MCS_SN_MAX))
            return &m->newest[h];
}

/* Fills m->newest with, for each SN of the batch, 1 + the index of its last
 * reading (receive order); 0 marks a free slot. */
static void index_newest(struct mcs_mirror *m, const struct mcs_jrec *recs, int n)
{
    uint32_t mask = m->newest_cap - 1;
    for(uint32_t u = 0; u < m->nused; u++)
        m->newest[m->used[u]] = 0;
    m->nused = 0;
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &recs[i];
        if(r->type != MCS_JREC_READING)
            continue;
        for(uint32_t h = hash_sn32(r->sn) & mask;; h = (h + 1) & mask) {
            uint32_t v = m->newest[h];
            if(!v) {
                m->newest[h] = (uint32_t)i + 1;
                m->used[m->nused++] = h;
                break;
            }
            if(!memcmp(recs[v - 1].sn, r->sn, MCS_SN_MAX)) {
                m->newest[h] = (uint32_t)i + 1;
                break;
            }
        }
    }
}

int mirror_batch(struct mcs_mirror *m, struct mcsd *d, struct mcs_cache *c,
                 const struct mcs_jrec *recs, int n)
{
    int64_t now = mcs_now_us();
    int readings = 0;
    int redis = cache_ready(c);
    int refresh_s = d->cfg->offline_after_s / 3 < ONLINE_REFRESH_S ? d->cfg->offline_after_s / 3
                                                                    : ONLINE_REFRESH_S;

    if(redis)
        redis = cache_collect(c) == 0;
    if(redis && c->generation != m->cache_gen) {
        /* A new Redis connection may be a restarted, empty Redis: write the
         * keys again instead of waiting for their refresh intervals. */
        registry_forget_keys(&d->reg);
        m->cache_gen = c->generation;
    }
    index_newest(m, recs, n);
    for(uint32_t u = 0; u < m->nused; u++) {
        const struct mcs_jrec *r = &recs[m->newest[m->used[u]] - 1];
        char sn[MCS_SN_MAX + 1];
        int64_t recv_s = r->recv_us / 1000000;
        jrec_sn(r, sn);
        int seen = registry_mark_seen(&d->reg, sn, recv_s, now / 1000, refresh_s, RT_WINDOW_MS);
        if(seen & MCS_SEEN_NEWEST)
            rt_drop(&m->rt, r->sn);
        else if(seen & MCS_SEEN_DEFER)
            rt_put(&m->rt, r);
        if(redis && (seen & (MCS_SEEN_NEWEST | MCS_SEEN_ONLINE)))
            cache_put_reading(c, r, seen & MCS_SEEN_NEWEST, seen & MCS_SEEN_ONLINE, recv_s);
    }
    /* Status records in journal order. One that came before the device's
     * last reading of this batch is already superseded (the device
     * reconnected and reported): only a later one changes its state. */
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &recs[i];
        if(r->type == MCS_JREC_READING) {
            readings++;
            if(r->trace_us)
                metrics_latency(&d->metrics, now - r->trace_us);
            continue;
        }
        const uint32_t *nw = newest_slot(m, recs, r->sn);
        if(nw && *nw && *nw - 1 > (uint32_t)i)
            continue;
        char sn[MCS_SN_MAX + 1];
        jrec_sn(r, sn);
        registry_mark_status(&d->reg, sn, r->online);
        if(redis && !r->online)
            cache_put_offline(c, sn);
    }
    if(redis)
        cache_send(c);
    return readings;
}

int mirror_init(struct mcs_mirror *m, int max_rows)
{
    memset(m, 0, sizeof(*m));
    for(m->newest_cap = 16; m->newest_cap < 2 * (uint32_t)max_rows; m->newest_cap *= 2) {
    }
    m->newest = calloc(m->newest_cap, sizeof(*m->newest));
    m->used = calloc((size_t)max_rows, sizeof(*m->used));
    if(!m->newest || !m->used) {
        mirror_cleanup(m);
        return MCS_ENOMEM;
    }
    return 0;
}

void mirror_cleanup(struct mcs_mirror *m)
{
    free(m->newest);
    free(m->used);
    free(m->rt.items);
    free(m->rt.idx);
    memset(m, 0, sizeof(*m));
}

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

static size_t sn_len(const char sn[MCS_SN_MAX])
{
    return strnlen(sn, MCS_SN_MAX);
}

/* Holds r back until its device's window opens (a later one replaces it).
 * On allocation failure the write is dropped (the next reading of the
 * device writes the key). */
static void rt_put(struct hmap *pending, const struct mcs_jrec *r)
{
    struct mcs_jrec *held;
    if(hmap_insert(pending, r->sn, sn_len(r->sn), (void **)&held, NULL) == 0)
        *held = *r;
}

/* Writes the held readings whose window has opened. */
void mirror_flush(struct mcs_mirror *m, struct mcsd *d, struct mcs_cache *c, int64_t now_ms)
{
    size_t pos = 0;
    const char *key;
    void *val;
    if(!hmap_count(&m->pending) || !cache_ready(c))
        return;
    while(hmap_next(&m->pending, &pos, &key, NULL, &val)) {
        const struct mcs_jrec *r = val;
        if(!registry_rt_take(&d->reg, key, now_ms, RT_WINDOW_MS))
            continue;
        cache_put_reading(c, r, 1, 0, r->recv_us / 1000000);
        hmap_delete(&m->pending, key, strlen(key), NULL);
    }
    cache_send(c);
}

/* Fills m->newest with, for each SN of the batch, the index of its last
 * live reading in receive order (its last resent one when it has no live
 * one). */
static void index_newest(struct mcs_mirror *m, const struct mcs_jrec *recs, int n)
{
    for(int i = 0; i < n; i++) {
        const struct mcs_jrec *r = &recs[i];
        uint32_t *v;
        int created;
        if(r->type != MCS_JREC_READING)
            continue;
        if(hmap_insert(&m->newest, r->sn, sn_len(r->sn), (void **)&v, &created))
            continue; /* out of memory: this reading just does not update Redis */
        if(created || !(r->flags & MCS_FLAG_RESENT) || (recs[*v].flags & MCS_FLAG_RESENT))
            *v = (uint32_t)i;
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
    /* The index costs the batch's size, not the map's: entries are found
     * from the batch's records and deleted again at the end (no clear or
     * scan of the whole slot array per batch). */
    index_newest(m, recs, n);
    for(int i = 0; i < n; i++) {
        if(recs[i].type != MCS_JREC_READING)
            continue;
        const uint32_t *v = hmap_find(&m->newest, recs[i].sn, sn_len(recs[i].sn));
        if(!v || *v != (uint32_t)i)
            continue; /* not the device's last reading of the batch */
        const struct mcs_jrec *r = &recs[i];
        char sn[MCS_SN_MAX + 1];
        int64_t recv_s = r->recv_us / 1000000;
        jrec_sn(r, sn);
        int seen = registry_mark_seen(&d->reg, sn, recv_s, now / 1000, refresh_s, RT_WINDOW_MS,
                                      !(r->flags & MCS_FLAG_RESENT));
        if(seen & MCS_SEEN_NEWEST)
            hmap_delete(&m->pending, r->sn, sn_len(r->sn), NULL); /* superseded */
        else if(seen & MCS_SEEN_DEFER)
            rt_put(&m->pending, r);
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
        const uint32_t *nw = hmap_find(&m->newest, r->sn, sn_len(r->sn));
        if(nw && *nw > (uint32_t)i)
            continue;
        char sn[MCS_SN_MAX + 1];
        jrec_sn(r, sn);
        registry_mark_status(&d->reg, sn, r->online);
        if(redis && !r->online)
            cache_put_offline(c, sn);
    }
    if(redis)
        cache_send(c);
    for(int i = 0; i < n; i++)
        if(recs[i].type == MCS_JREC_READING)
            hmap_delete(&m->newest, recs[i].sn, sn_len(recs[i].sn), NULL);
    return readings;
}

int mirror_init(struct mcs_mirror *m, int max_rows)
{
    int rc;
    memset(m, 0, sizeof(*m));
    if((rc = hmap_init(&m->newest, sizeof(uint32_t), (size_t)max_rows, 0)) ||
       (rc = hmap_init(&m->pending, sizeof(struct mcs_jrec), 0, 0)))
        return rc;
    return 0;
}

void mirror_cleanup(struct mcs_mirror *m)
{
    hmap_cleanup(&m->newest);
    hmap_cleanup(&m->pending);
}

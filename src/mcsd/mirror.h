/* mirror.h - after a batch is committed: the live state that follows the
 * stored readings, in journal (= receive) order — the registry's online /
 * last_seen, and Redis realtime:{sn} (at most twice a second per device, the
 * newest always written last) and online:{sn} (refreshed every 15 s, TTL
 * OFFLINE_AFTER_S), DEL online:{sn} on a Last Will (R-PR-3, R-ST-7).
 * Owns the per-batch newest-reading index and the deferred realtime writes.
 * Thread: the store thread. */
#ifndef MCS_MIRROR_H
#define MCS_MIRROR_H

#include "cache.h"
#include "mcsd.h"

/* Newest readings whose realtime write waits for its window: one entry per
 * SN (a later reading replaces an earlier one), open-addressing index. */
struct mcs_rt_pending {
    struct mcs_jrec *items;
    uint32_t n, cap;
    uint32_t *idx;    /* 1 + item index, 0 = free */
    uint32_t idx_cap; /* power of two, > 2 × n */
};

struct mcs_mirror {
    struct mcs_rt_pending rt;
    uint32_t *newest;    /* per batch: open-addressing sn → 1 + index of its last reading */
    uint32_t newest_cap; /* power of two, >= 2 × max_rows */
    uint32_t *used;      /* the slots of newest in use, so a batch costs its size */
    uint32_t nused;
    unsigned cache_gen;  /* cache generation the registry's key times refer to */
};

/* Sizes the index for batches of at most max_rows. Returns 0 or MCS_ENOMEM. */
int mirror_init(struct mcs_mirror *m, int max_rows);
void mirror_cleanup(struct mcs_mirror *m);

/* Applies a committed batch recs[0..n): registry, then Redis (replies of
 * the previous batch are collected first, this batch's are read during the
 * next one, so Redis works while PostgreSQL does). Returns the number of
 * reading records in the batch. */
int mirror_batch(struct mcs_mirror *m, struct mcsd *d, struct mcs_cache *c,
                 const struct mcs_jrec *recs, int n);

/* Writes the held realtime readings whose window has opened. */
void mirror_flush(struct mcs_mirror *m, struct mcsd *d, struct mcs_cache *c, int64_t now_ms);

#endif

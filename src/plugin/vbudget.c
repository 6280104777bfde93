/* vbudget.c - per-address and total verification budgets (see vbudget.h).
 * Owns its table. Thread: the broker's only. */
#include "vbudget.h"
#include "err.h"

#include <string.h>

int vbudget_init(struct vbudget *b, double per_addr_s, double total_s, size_t max_tracked)
{
    int rc;

    memset(b, 0, sizeof(*b));
    if(!(per_addr_s > 0) || !(total_s > 0) || max_tracked == 0)
        return MCS_EINVAL;
    rc = hmap_init(&b->addrs, sizeof(struct vbucket), 64, max_tracked);
    if(rc)
        return rc;
    b->per_addr = per_addr_s;
    b->total = total_s;
    b->max_tracked = max_tracked;
    b->all.tokens = total_s;
    b->overflow.tokens = per_addr_s;
    return 0;
}

void vbudget_cleanup(struct vbudget *b)
{
    hmap_cleanup(&b->addrs);
}

static void refill(struct vbucket *k, double rate, int64_t now)
{
    if(now > k->last_ms) {
        k->tokens += rate * (double)(now - k->last_ms) / 1000.0;
        if(k->tokens > rate)
            k->tokens = rate;
        k->last_ms = now;
    }
}

/* Drops the addresses whose bucket has refilled completely: they cost
 * nothing to forget. */
static void drop_idle(struct vbudget *b, int64_t now)
{
    size_t pos = 0, klen;
    const char *key;
    void *v;

    while(hmap_next(&b->addrs, &pos, &key, &klen, &v)) {
        struct vbucket *k = v;
        refill(k, b->per_addr, now);
        if(k->tokens >= b->per_addr)
            hmap_delete(&b->addrs, key, klen, NULL);
    }
}

enum vb_result vbudget_take(struct vbudget *b, const unsigned char a[16], int64_t now_ms)
{
    struct vbucket *k = hmap_find(&b->addrs, (const char *)a, 16);
    void *v;
    int created = 0;

    if(!k) {
        int rc = hmap_insert(&b->addrs, (const char *)a, 16, &v, &created);
        if(rc == MCS_EFULL) {
            drop_idle(b, now_ms);
            rc = hmap_insert(&b->addrs, (const char *)a, 16, &v, &created);
        }
        k = rc ? &b->overflow : v;
        if(created) {
            k->tokens = b->per_addr;
            k->last_ms = now_ms;
        }
    }
    refill(k, b->per_addr, now_ms);
    if(k->tokens < 1.0)
        return VB_ADDR;
    refill(&b->all, b->total, now_ms);
    if(b->all.tokens < 1.0)
        return VB_TOTAL;
    k->tokens -= 1.0;
    b->all.tokens -= 1.0;
    return 0;
}

void vbudget_refund(struct vbudget *b, const unsigned char a[16])
{
    struct vbucket *k = hmap_find(&b->addrs, (const char *)a, 16);

    if(!k)
        k = &b->overflow;
    if(k->tokens + 1.0 <= b->per_addr)
        k->tokens += 1.0;
    if(b->all.tokens + 1.0 <= b->total)
        b->all.tokens += 1.0;
}

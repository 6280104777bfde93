/* vbudget.h - how many Argon2id verifications (~80 ms of the broker's only
 * thread each) the plugin spends, per client address and in total: a
 * token bucket per source address (a shared hash map, src/common/hmap.h)
 * and one for all, spent by wrong passwords (a right one is refunded).
 * A stranger sending wrong passwords from one address
 * uses up only that address's bucket, so logins from other addresses
 * (mcsd, mcs-api) still find the total budget unspent, and the broker
 * thread spends at most per_addr_s x 80 ms a second on that address.
 * When more than max_tracked addresses are in the table, idle ones are
 * dropped; if none is idle, new addresses share one overflow bucket.
 * Owns its table. Thread: the broker's only. */
#ifndef MCS_VBUDGET_H
#define MCS_VBUDGET_H

#include "hmap.h"

#include <stddef.h>
#include <stdint.h>

struct vbucket {
    double tokens;
    int64_t last_ms;
};

struct vbudget {
    struct hmap addrs; /* 16-byte address -> struct vbucket */
    double per_addr, total;
    struct vbucket all, overflow;
    size_t max_tracked;
};

enum vb_result {
    VB_OK = 0,
    VB_ADDR,  /* this address has used its budget */
    VB_TOTAL, /* all addresses together have */
};

/* per_addr_s and total_s are verifications per second (also the burst);
 * max_tracked bounds the table. Returns 0, MCS_EINVAL or MCS_EIO. */
int vbudget_init(struct vbudget *b, double per_addr_s, double total_s, size_t max_tracked);

/* Gives back the verification just taken for a (it found the right
 * password): only wrong passwords use up a budget, so the few good logins
 * (one per account per verify_cache_s) never wait behind a flood. */
void vbudget_refund(struct vbudget *b, const unsigned char a[16]);

/* Frees the table. */
void vbudget_cleanup(struct vbudget *b);

/* Takes one verification for address a (addrset.h form) at monotonic time
 * now_ms, from both its bucket and the total; takes nothing when refused. */
enum vb_result vbudget_take(struct vbudget *b, const unsigned char a[16], int64_t now_ms);

#endif

/* hmap.h - the one small hash map of MCS-IoT: short string keys (device
 * serial numbers, at most HMAP_KEY_MAX bytes) -> a fixed-size value the
 * caller chooses (a struct, a pointer, an index), stored inline.
 * Owns its slot array. Touches nothing else; no locking (the owner locks).
 * Thread: any, one at a time per map.
 *
 * Open addressing with linear probing and tombstones; the hash is keyed
 * SipHash-2-4 (libsodium crypto_shorthash) with a random key per map, so
 * outside input cannot aim collisions at it. The load (live entries plus
 * tombstones) stays under 70 %: an insert that would pass it rebuilds the
 * slot array first, doubled when live entries need it, else at the same
 * size (which only drops tombstones). A map never holds more than `max`
 * live entries (MCS_EFULL past that), so its memory is bounded.
 *
 * Value pointers returned by hmap_find/hmap_insert stay valid until the
 * next hmap_insert (which may rebuild the array) or hmap_clear/_cleanup;
 * hmap_delete does not move other entries. Values are aligned for any
 * type (max_align_t). */
#ifndef MCS_HMAP_H
#define MCS_HMAP_H

#include <stddef.h>
#include <stdint.h>

#define HMAP_KEY_MAX 32

struct hmap {
    unsigned char *slots;  /* cap slots of slot_size bytes */
    size_t cap;            /* power of two, or 0 before the first insert */
    size_t n;              /* live entries */
    size_t used;           /* live entries + tombstones */
    size_t max;            /* most live entries allowed */
    size_t vsize;          /* value bytes per entry */
    size_t slot_size;      /* header + value, rounded for alignment */
    size_t initial_cap;    /* first array size (from `expected`) */
    unsigned char key[16]; /* SipHash key, random per map */
};

/* Initialises an empty map whose entries carry vsize value bytes (0 is
 * allowed: a set). expected sizes the first allocation (0: small default,
 * made on the first insert); max caps the live entries (0: SIZE_MAX/4).
 * Returns 0, MCS_EINVAL (vsize > 64 KiB) or MCS_EIO (libsodium failed to
 * initialise). Allocates nothing until the first insert. */
int hmap_init(struct hmap *m, size_t vsize, size_t expected, size_t max);

/* Frees the slot array; the map is then empty but still initialised (it
 * may be used again). NULL is a no-op. */
void hmap_cleanup(struct hmap *m);

/* Removes every entry, keeping the slot array (costs a memset of it). */
void hmap_clear(struct hmap *m);

/* The value of key (len bytes, no NUL needed) or NULL when absent or when
 * len is 0 or > HMAP_KEY_MAX. */
void *hmap_find(const struct hmap *m, const char *key, size_t len);

/* Finds key or adds it. *val (required) receives its value: for a new
 * entry zero-filled, for an existing one as it is. *created (may be NULL)
 * is 1 when the entry is new. Returns 0, MCS_EINVAL for len 0 or
 * > HMAP_KEY_MAX, MCS_EFULL when a new entry would exceed max, or
 * MCS_ENOMEM (map unchanged). May move every value (see above). */
int hmap_insert(struct hmap *m, const char *key, size_t len, void **val, int *created);

/* Removes key, leaving a tombstone. old (may be NULL) receives a copy of
 * its value (vsize bytes). Returns 0 or MCS_ENOTFOUND. Moves no other
 * entry, so it is safe while iterating with hmap_next. */
int hmap_delete(struct hmap *m, const char *key, size_t len, void *old);

/* Number of live entries. */
size_t hmap_count(const struct hmap *m);

/* Iterates: start with *pos = 0; each call returning 1 gives the next live
 * entry's key (NUL-terminated, borrowed), its length (klen may be NULL)
 * and value; returns 0 at the end. Order is arbitrary. Deleting the entry
 * just returned is allowed; inserting during an iteration is not. */
int hmap_next(const struct hmap *m, size_t *pos, const char **key, size_t *klen, void **val);

#endif

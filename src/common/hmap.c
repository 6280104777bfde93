/* hmap.c - open-addressing string-key map (see hmap.h). Owns the slot
 * arrays it allocates. Thread: the caller's, one at a time per map. */
#include "hmap.h"
#include "err.h"

#include <sodium.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_EMPTY 0
#define SLOT_LIVE 1
#define SLOT_DELETED 2
#define MIN_CAP 16
#define VSIZE_MAX 65536

/* The head of every slot; the value follows at VAL_OFF. */
struct hslot {
    uint64_t hash;
    uint8_t state;
    uint8_t len;
    char key[HMAP_KEY_MAX + 1];
};

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))
#define VAL_OFF ALIGN_UP(sizeof(struct hslot), alignof(max_align_t))

static struct hslot *slot_at(unsigned char *slots, size_t slot_size, size_t i)
{
    return (struct hslot *)(void *)(slots + i * slot_size);
}

static uint64_t hash_key(const struct hmap *m, const char *key, size_t len)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, (const unsigned char *)key, len, m->key);
    memcpy(&h, out, sizeof(h));
    return h;
}

/* Smallest power of two >= MIN_CAP keeping `entries` under 35 % load, so
 * that a rebuilt array has room to fill before the next rebuild. */
static size_t cap_for(size_t entries)
{
    size_t cap = MIN_CAP;
    while(cap < ((size_t)1 << 40) && entries * 20 > cap * 7)
        cap <<= 1;
    return cap;
}

int hmap_init(struct hmap *m, size_t vsize, size_t expected, size_t max)
{
    memset(m, 0, sizeof(*m));
    if(vsize > VSIZE_MAX)
        return MCS_EINVAL;
    if(sodium_init() < 0)
        return MCS_EIO;
    m->vsize = vsize;
    m->slot_size = VAL_OFF + ALIGN_UP(vsize, alignof(max_align_t));
    m->max = max ? max : SIZE_MAX / 4;
    if(expected > m->max)
        expected = m->max;
    m->initial_cap = cap_for(expected);
    randombytes_buf(m->key, sizeof(m->key));
    return 0;
}

void hmap_cleanup(struct hmap *m)
{
    if(!m)
        return;
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = m->used = 0;
}

void hmap_clear(struct hmap *m)
{
    if(m->slots)
        memset(m->slots, 0, m->cap * m->slot_size);
    m->n = m->used = 0;
}

/* The slot index holding key, or SIZE_MAX. */
static size_t lookup(const struct hmap *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;

    /* The load limit guarantees an empty slot, so the probe ends. */
    for(;; i = (i + 1) & mask) {
        const struct hslot *s = slot_at(m->slots, m->slot_size, i);
        if(s->state == SLOT_EMPTY)
            return SIZE_MAX;
        if(s->state == SLOT_LIVE && s->hash == h && s->len == len && !memcmp(s->key, key, len))
            return i;
    }
}

void *hmap_find(const struct hmap *m, const char *key, size_t len)
{
    size_t i;
    if(!m->cap || len == 0 || len > HMAP_KEY_MAX)
        return NULL;
    i = lookup(m, key, len, hash_key(m, key, len));
    return i == SIZE_MAX ? NULL : m->slots + i * m->slot_size + VAL_OFF;
}

/* Moves the live entries into a new array of ncap slots (drops tombstones). */
static int rebuild(struct hmap *m, size_t ncap)
{
    unsigned char *ns;
    size_t mask = ncap - 1;

    if(ncap > SIZE_MAX / m->slot_size)
        return MCS_ENOMEM;
    ns = calloc(ncap, m->slot_size);
    if(!ns)
        return MCS_ENOMEM;
    for(size_t i = 0; i < m->cap; i++) {
        const struct hslot *s = slot_at(m->slots, m->slot_size, i);
        size_t j;
        if(s->state != SLOT_LIVE)
            continue;
        for(j = (size_t)s->hash & mask; slot_at(ns, m->slot_size, j)->state != SLOT_EMPTY;
            j = (j + 1) & mask) {
        }
        memcpy(ns + j * m->slot_size, s, m->slot_size);
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->n;
    return 0;
}

int hmap_insert(struct hmap *m, const char *key, size_t len, void **val, int *created)
{
    size_t mask, i, tomb = SIZE_MAX;
    uint64_t h;
    struct hslot *s;
    int rc;

    *val = NULL;
    if(created)
        *created = 0;
    if(len == 0 || len > HMAP_KEY_MAX)
        return MCS_EINVAL;
    h = hash_key(m, key, len);
    if(m->cap) {
        i = lookup(m, key, len, h);
        if(i != SIZE_MAX) {
            *val = m->slots + i * m->slot_size + VAL_OFF;
            return 0;
        }
    }
    if(m->n >= m->max)
        return MCS_EFULL;
    /* Keep live + tombstones under 70 %, so that an empty slot always ends
     * a probe and probes stay short. */
    if(!m->cap || (m->used + 1) * 10 > m->cap * 7) {
        size_t ncap = cap_for(m->n + 1);
        if(ncap < (m->cap ? m->cap : m->initial_cap))
            ncap = m->cap ? m->cap : m->initial_cap;
        if((rc = rebuild(m, ncap)))
            return rc;
    }
    mask = m->cap - 1;
    for(i = (size_t)h & mask;; i = (i + 1) & mask) {
        s = slot_at(m->slots, m->slot_size, i);
        if(s->state == SLOT_EMPTY)
            break;
        if(s->state == SLOT_DELETED && tomb == SIZE_MAX)
            tomb = i;
    }
    if(tomb != SIZE_MAX)
        i = tomb;
    else
        m->used++;
    s = slot_at(m->slots, m->slot_size, i);
    memset(s, 0, m->slot_size);
    s->hash = h;
    s->state = SLOT_LIVE;
    s->len = (uint8_t)len;
    memcpy(s->key, key, len);
    m->n++;
    *val = (unsigned char *)s + VAL_OFF;
    if(created)
        *created = 1;
    return 0;
}

int hmap_delete(struct hmap *m, const char *key, size_t len, void *old)
{
    size_t i;
    struct hslot *s;

    if(!m->cap || len == 0 || len > HMAP_KEY_MAX)
        return MCS_ENOTFOUND;
    i = lookup(m, key, len, hash_key(m, key, len));
    if(i == SIZE_MAX)
        return MCS_ENOTFOUND;
    s = slot_at(m->slots, m->slot_size, i);
    if(old && m->vsize)
        memcpy(old, (unsigned char *)s + VAL_OFF, m->vsize);
    /* The slot stays "deleted", not empty: it may sit inside another key's
     * probe sequence. */
    s->state = SLOT_DELETED;
    m->n--;
    return 0;
}

size_t hmap_count(const struct hmap *m)
{
    return m->n;
}

int hmap_next(const struct hmap *m, size_t *pos, const char **key, size_t *klen, void **val)
{
    for(size_t i = *pos; i < m->cap; i++) {
        struct hslot *s = slot_at(m->slots, m->slot_size, i);
        if(s->state != SLOT_LIVE)
            continue;
        *pos = i + 1;
        if(key)
            *key = s->key;
        if(klen)
            *klen = s->len;
        if(val)
            *val = (unsigned char *)s + VAL_OFF;
        return 1;
    }
    *pos = m->cap;
    return 0;
}

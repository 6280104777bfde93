/* test_hmap.c - the shared string-key map (src/common/hmap.c): inserts,
 * updates, deletes with tombstones inside collision chains, growth with
 * values intact, the capacity limit, iteration and clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "hmap.h"

struct val {
    int id;
    double x;
};

static void basics(void **state)
{
    struct hmap m;
    struct val *v, old;
    int created;

    assert_int_equal(hmap_init(&m, sizeof(struct val), 0, 0), 0);
    assert_null(hmap_find(&m, "A1", 2));
    assert_int_equal(hmap_delete(&m, "A1", 2, NULL), MCS_ENOTFOUND);
    assert_int_equal(hmap_insert(&m, "A1", 2, (void **)&v, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(v->id, 0); /* new values are zero-filled */
    assert_true(((uintptr_t)v % _Alignof(max_align_t)) == 0);
    v->id = 7;
    v->x = 1.5;
    assert_int_equal(hmap_insert(&m, "A1", 2, (void **)&v, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(v->id, 7);
    /* Keys are (pointer, length): a longer buffer with the same prefix
     * finds the same entry, a shorter one does not. */
    v = hmap_find(&m, "A1xyz", 2);
    assert_non_null(v);
    assert_int_equal(v->id, 7);
    assert_null(hmap_find(&m, "A", 1));
    assert_null(hmap_find(&m, "A12", 3));
    /* Key length limits. */
    assert_int_equal(hmap_insert(&m, "", 0, (void **)&v, NULL), MCS_EINVAL);
    assert_null(v);
    assert_int_equal(hmap_insert(&m, "0123456789012345678901234567890123", 33, (void **)&v, NULL),
                     MCS_EINVAL);
    assert_int_equal(hmap_insert(&m, "01234567890123456789012345678901", 32, (void **)&v, NULL), 0);
    assert_int_equal(hmap_count(&m), 2);
    assert_int_equal(hmap_delete(&m, "A1", 2, &old), 0);
    assert_int_equal(old.id, 7);
    assert_null(hmap_find(&m, "A1", 2));
    assert_int_equal(hmap_count(&m), 1);
    hmap_cleanup(&m);
    assert_int_equal(hmap_count(&m), 0);
    hmap_cleanup(NULL);
}

/* Keys whose home slot in a 16-slot map is `home`, found by trying names
 * against the map's own (here fixed) SipHash key. */
static int keys_with_home(const struct hmap *m, size_t home, char out[][16], int want)
{
    int got = 0;
    for(int i = 0; i < 100000 && got < want; i++) {
        unsigned char h[crypto_shorthash_BYTES];
        uint64_t v;
        char k[16];
        int len = snprintf(k, sizeof(k), "K%d", i);
        crypto_shorthash(h, (const unsigned char *)k, (size_t)len, m->key);
        memcpy(&v, h, sizeof(v));
        if((v & 15) == home)
            memcpy(out[got++], k, sizeof(k));
    }
    return got;
}

static void collisions_and_tombstones(void **state)
{
    struct hmap m;
    char k[4][16];
    int *v, created;

    /* max 5: the first array has 16 slots and never grows. */
    assert_int_equal(hmap_init(&m, sizeof(int), 0, 5), 0);
    memset(m.key, 0x5a, sizeof(m.key)); /* deterministic hash for the test */
    assert_int_equal(keys_with_home(&m, 15, k, 4), 4);
    for(int i = 0; i < 4; i++) {
        assert_int_equal(hmap_insert(&m, k[i], strlen(k[i]), (void **)&v, &created), 0);
        assert_int_equal(created, 1);
        *v = i;
    }
    assert_int_equal(m.cap, 16);
    /* All four share slot 15 and wrap around to 0, 1, 2. */
    for(int i = 0; i < 4; i++) {
        v = hmap_find(&m, k[i], strlen(k[i]));
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    /* Deleting from the middle of the chain must not cut it. */
    assert_int_equal(hmap_delete(&m, k[1], strlen(k[1]), NULL), 0);
    assert_null(hmap_find(&m, k[1], strlen(k[1])));
    assert_int_equal(*(int *)hmap_find(&m, k[2], strlen(k[2])), 2);
    assert_int_equal(*(int *)hmap_find(&m, k[3], strlen(k[3])), 3);
    assert_int_equal(m.used, 4); /* a tombstone, not an empty slot */
    /* Re-inserting a chain member with a tombstone before it does not
     * create a second entry. */
    assert_int_equal(hmap_insert(&m, k[3], strlen(k[3]), (void **)&v, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(*v, 3);
    /* A new key reuses the tombstone. */
    assert_int_equal(hmap_insert(&m, k[1], strlen(k[1]), (void **)&v, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(*v, 0);
    assert_int_equal(m.used, 4);
    assert_int_equal(hmap_count(&m), 4);
    hmap_cleanup(&m);
}

static void growth_and_churn(void **state)
{
    struct hmap m;
    char sn[32];
    struct val *v;
    size_t pos = 0, seen = 0;
    const char *key;
    size_t klen;

    assert_int_equal(hmap_init(&m, sizeof(struct val), 0, 0), 0);
    for(int i = 0; i < 50000; i++) {
        int len = snprintf(sn, sizeof(sn), "S%06d", i);
        assert_int_equal(hmap_insert(&m, sn, (size_t)len, (void **)&v, NULL), 0);
        v->id = i;
        v->x = i * 0.5;
    }
    assert_int_equal(hmap_count(&m), 50000);
    assert_true(m.cap >= 50000 * 10 / 7);
    /* Churn: delete and re-insert half, so that tombstones pile up and
     * same-size rebuilds purge them. */
    for(int round = 0; round < 4; round++) {
        for(int i = 0; i < 50000; i += 2) {
            int len = snprintf(sn, sizeof(sn), "S%06d", i);
            assert_int_equal(hmap_delete(&m, sn, (size_t)len, NULL), 0);
        }
        for(int i = 0; i < 50000; i += 2) {
            int len = snprintf(sn, sizeof(sn), "S%06d", i);
            assert_int_equal(hmap_insert(&m, sn, (size_t)len, (void **)&v, NULL), 0);
            v->id = i + round + 1;
        }
        assert_true(m.used * 10 <= m.cap * 7);
    }
    for(int i = 0; i < 50000; i++) {
        int len = snprintf(sn, sizeof(sn), "S%06d", i);
        v = hmap_find(&m, sn, (size_t)len);
        assert_non_null(v);
        assert_int_equal(v->id, i % 2 ? i : i + 4);
    }
    assert_null(hmap_find(&m, "S050000", 7));
    while(hmap_next(&m, &pos, &key, &klen, (void **)&v)) {
        assert_int_equal(strlen(key), klen);
        assert_int_equal(key[0], 'S');
        seen++;
    }
    assert_int_equal(seen, 50000);
    hmap_clear(&m);
    assert_int_equal(hmap_count(&m), 0);
    assert_null(hmap_find(&m, "S000001", 7));
    pos = 0;
    assert_int_equal(hmap_next(&m, &pos, &key, &klen, (void **)&v), 0);
    hmap_cleanup(&m);
}

static void capacity_limit(void **state)
{
    struct hmap m;
    char sn[16];
    void *v;
    size_t pos = 0;
    const char *key;
    int n = 0;

    assert_int_equal(hmap_init(&m, 0, 1000, 100), 0); /* a set; expected > max is clamped */
    for(int i = 0; i < 100; i++) {
        int len = snprintf(sn, sizeof(sn), "D%d", i);
        assert_int_equal(hmap_insert(&m, sn, (size_t)len, &v, NULL), 0);
    }
    assert_int_equal(hmap_insert(&m, "D100", 4, &v, NULL), MCS_EFULL);
    assert_null(v);
    assert_int_equal(hmap_count(&m), 100);
    /* An existing key is still found by insert at the limit. */
    assert_int_equal(hmap_insert(&m, "D5", 2, &v, NULL), 0);
    assert_non_null(v);
    assert_true(m.cap <= 512); /* sized for max, not for expected */
    assert_int_equal(hmap_delete(&m, "D5", 2, NULL), 0);
    assert_int_equal(hmap_insert(&m, "D100", 4, &v, NULL), 0);
    /* Deleting during iteration is allowed. */
    while(hmap_next(&m, &pos, &key, NULL, NULL)) {
        if(key[1] == '1')
            assert_int_equal(hmap_delete(&m, key, strlen(key), NULL), 0);
        n++;
    }
    assert_int_equal(n, 100);
    assert_null(hmap_find(&m, "D10", 3));
    assert_non_null(hmap_find(&m, "D20", 3));
    hmap_cleanup(&m);
    assert_int_equal(hmap_init(&m, 70000, 0, 0), MCS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(basics),
        cmocka_unit_test(collisions_and_tombstones),
        cmocka_unit_test(growth_and_churn),
        cmocka_unit_test(capacity_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* pwverify.c - Argon2id verification with result memory and a rate limit
 * (see pwverify.h). Owns the struct's contents. Thread: broker's only. */
#include "pwverify.h"
#include "err.h"

#include <sodium.h>
#include <string.h>

int pwv_init(struct pwverify *v, const char *hash, int64_t good_ttl_ms, int64_t bad_ttl_ms,
             double per_s)
{
    size_t n = hash ? strlen(hash) : 0;

    memset(v, 0, sizeof(*v));
    if(sodium_init() < 0)
        return MCS_ENOMEM;
    if(n >= sizeof(v->hash))
        return MCS_EINVAL;
    if(n > 0) {
        /* needs_rehash() parses the string: -1 means it is not a hash of
         * this algorithm at all. */
        if(strncmp(hash, "$argon2id$", 10) != 0 ||
           crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_MIN,
                                          crypto_pwhash_MEMLIMIT_MIN) < 0)
            return MCS_EINVAL;
        memcpy(v->hash, hash, n + 1);
    }
    randombytes_buf(v->key, sizeof(v->key));
    v->good_ttl_ms = good_ttl_ms;
    v->bad_ttl_ms = bad_ttl_ms;
    v->per_s = per_s > 0 ? per_s : 1;
    v->tokens = v->per_s;
    return 0;
}

void pwv_cleanup(struct pwverify *v)
{
    sodium_memzero(v, sizeof(*v));
}

static int memo_find(const struct pwv_memo *m, size_t n, const unsigned char d[32], int64_t now)
{
    for(size_t i = 0; i < n; i++)
        if(m[i].until_ms > now && sodium_memcmp(m[i].digest, d, 32) == 0)
            return 1;
    return 0;
}

/* Stores d in the free or oldest-expiring slot. */
static void memo_put(struct pwv_memo *m, size_t n, const unsigned char d[32], int64_t until)
{
    size_t pick = 0;
    for(size_t i = 0; i < n; i++) {
        if(m[i].until_ms < m[pick].until_ms)
            pick = i;
    }
    memcpy(m[pick].digest, d, 32);
    m[pick].until_ms = until;
}

enum pwv_result pwv_recall(struct pwverify *v, const char *password, size_t len, int64_t now_ms)
{
    unsigned char d[32];
    enum pwv_result res = PWV_UNKNOWN;

    if(!v->hash[0])
        return PWV_NOT_CONFIG;
    crypto_generichash(d, sizeof(d), (const unsigned char *)password, len, v->key, sizeof(v->key));
    if(memo_find(v->good, PWV_GOOD_SLOTS, d, now_ms))
        res = PWV_OK;
    else if(memo_find(v->bad, PWV_BAD_SLOTS, d, now_ms))
        res = PWV_BAD;
    if(res != PWV_UNKNOWN)
        v->cached++;
    sodium_memzero(d, sizeof(d));
    return res;
}

enum pwv_result pwv_verify(struct pwverify *v, const char *password, size_t len, int64_t now_ms)
{
    unsigned char d[32];
    enum pwv_result res;

    if(!v->hash[0])
        return PWV_NOT_CONFIG;
    crypto_generichash(d, sizeof(d), (const unsigned char *)password, len, v->key, sizeof(v->key));
    v->verifications++;
    if(crypto_pwhash_str_verify(v->hash, password, (unsigned long long)len) == 0) {
        memo_put(v->good, PWV_GOOD_SLOTS, d, now_ms + v->good_ttl_ms);
        res = PWV_OK;
    }
    else {
        memo_put(v->bad, PWV_BAD_SLOTS, d, now_ms + v->bad_ttl_ms);
        res = PWV_BAD;
    }
    sodium_memzero(d, sizeof(d));
    return res;
}

enum pwv_result pwv_check(struct pwverify *v, const char *password, size_t len, int64_t now_ms)
{
    enum pwv_result res = pwv_recall(v, password, len, now_ms);

    if(res != PWV_UNKNOWN)
        return res;
    if(now_ms > v->last_ms) {
        v->tokens += v->per_s * (double)(now_ms - v->last_ms) / 1000.0;
        if(v->tokens > v->per_s)
            v->tokens = v->per_s;
        v->last_ms = now_ms;
    }
    if(v->tokens < 1.0)
        return PWV_LIMITED;
    v->tokens -= 1.0;
    return pwv_verify(v, password, len, now_ms);
}

/* pwverify.h - password checks of the worker and admin logins against an
 * Argon2id hash (crypto_pwhash_str), with a memory of recent results.
 * An Argon2id verification costs ~80 ms of the broker's only thread, so:
 *  - a successful verification is remembered for `good_ttl_ms` by a keyed
 *    BLAKE2b digest of the password (key random per process, so the cache
 *    holds nothing an offline attacker could use): a reconnect storm of
 *    workers costs one verification, not one per connection;
 *  - a failed one is remembered for `bad_ttl_ms`, so repeating the same
 *    wrong password costs nothing either;
 *  - verifications of passwords not in either memory are limited to
 *    `per_s` per second (token bucket); beyond that a login is refused at
 *    once (rate_limited) instead of stalling every other client.
 * Owns one principal's hash and memory. Thread: the broker's only. */
#ifndef MCS_PWVERIFY_H
#define MCS_PWVERIFY_H

#include <stddef.h>
#include <stdint.h>

#define PWV_HASH_MAX 256
#define PWV_GOOD_SLOTS 4
#define PWV_BAD_SLOTS 16

enum pwv_result {
    PWV_OK = 0,
    PWV_BAD,        /* wrong password */
    PWV_LIMITED,    /* not verified: too many verifications this second */
    PWV_NOT_CONFIG, /* no hash configured: this login is disabled */
    PWV_UNKNOWN,    /* pwv_recall: not in the memory, needs a verification */
};

struct pwv_memo {
    unsigned char digest[32];
    int64_t until_ms; /* 0: free slot */
};

struct pwverify {
    char hash[PWV_HASH_MAX];
    unsigned char key[32];
    int64_t good_ttl_ms, bad_ttl_ms;
    double per_s, tokens;
    int64_t last_ms;
    struct pwv_memo good[PWV_GOOD_SLOTS];
    struct pwv_memo bad[PWV_BAD_SLOTS];
    uint64_t verifications; /* Argon2 verifications done */
    uint64_t cached;        /* answers from the memory */
};

/* Sets up a principal. hash may be "" (login disabled) or an Argon2id string
 * `$argon2id$...`. Returns 0, or MCS_EINVAL for a hash that is not a valid
 * Argon2id string or too long. Calls sodium_init(). */
int pwv_init(struct pwverify *v, const char *hash, int64_t good_ttl_ms, int64_t bad_ttl_ms,
             double per_s);

/* Wipes the hash, key and memory. */
void pwv_cleanup(struct pwverify *v);

/* Checks password (len bytes) at monotonic time now_ms: pwv_recall, then,
 * within this principal's own per_s budget, pwv_verify. */
enum pwv_result pwv_check(struct pwverify *v, const char *password, size_t len, int64_t now_ms);

/* The memory only, no Argon2: PWV_OK or PWV_BAD when remembered,
 * PWV_UNKNOWN when not, PWV_NOT_CONFIG. For callers that budget the
 * verifications themselves (vbudget.h). */
enum pwv_result pwv_recall(struct pwverify *v, const char *password, size_t len, int64_t now_ms);

/* One Argon2id verification (no budget), remembered: PWV_OK, PWV_BAD or
 * PWV_NOT_CONFIG. */
enum pwv_result pwv_verify(struct pwverify *v, const char *password, size_t len, int64_t now_ms);

#endif

/* licstore.h - the vendor's license store (issue #17, R-LI-6): issued
 * licenses, revocations and host bindings in one SQLite database in WAL mode,
 * shared by `mcs-license` and the license server `mcs-licensed`.
 * Owns its sqlite3 handle; touches no other file. Thread: one handle per
 * thread (SQLite serialises writers; every write is one transaction). */
#ifndef MCS_LICSTORE_H
#define MCS_LICSTORE_H

#include "license.h"

#include <stdint.h>

struct licstore;

/* Opens (and creates) the store at path: WAL, a 5 s busy timeout, the
 * schema. Returns 0 and *out, MCS_EIO (cannot open), MCS_EDB (schema). */
int licstore_open(const char *path, struct licstore **out);
/* Closes; NULL is a no-op. */
void licstore_free(struct licstore *s);

/* Records an issued license and its signed text. MCS_EDUP when the id or the
 * key exists, MCS_EDB otherwise on failure. */
int licstore_add(struct licstore *s, const struct mcs_license *l, const char *text);

/* One row of licstore_list. bound_fp is "" when no host is bound. */
struct licstore_row {
    struct mcs_license lic;
    int revoked;
    char bound_fp[LIC_FP_HEX + 1];
    int64_t bound_at, last_seen; /* unix seconds, 0 when never */
};
/* Calls fn for every license, oldest first. Returns 0, MCS_EDB, or what fn
 * returned when not 0 (which stops the walk). */
int licstore_list(struct licstore *s, int (*fn)(const struct licstore_row *, void *), void *arg);

/* Revokes / releases the host binding of the license whose id or key is
 * which. MCS_ENOTFOUND when none matches. */
int licstore_revoke(struct licstore *s, const char *which);
int licstore_release(struct licstore *s, const char *which);

/* The verdict of a verification (POST /api/verify) at unix time now, in one
 * transaction: unknown key, revoked, expired, bound to another fingerprint,
 * or ok (binding fp to the license when none is bound yet). *lic gets the
 * license for the token. Returns 0 with *status set, or MCS_EDB. */
int licstore_verify(struct licstore *s, const char *key, const char *fp, int64_t now,
                    enum lic_token_status *status, struct mcs_license *lic);

#endif

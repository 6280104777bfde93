/* storage_cfg.h - the bucket settings of archive, backup and history (issue
 * #10, R-ST-4): the storage settings the admin saves through mcs-api
 * (system_config key 'storage': endpoint, bucket, region, access_key,
 * secret_key; the keys "enc:v1:..." of secret.h) over the .env values (R2_*,
 * ARCHIVE_SINK). Owns nothing beyond the call; touches no other table.
 * Thread: any (the caller's connection). */
#ifndef MCS_STORAGE_CFG_H
#define MCS_STORAGE_CFG_H

#include "config.h"
#include "secret.h"
#include "sink.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stddef.h>

/* out := env with each field of the JSON object `json` (may be NULL: none
 * stored) that is present and non-empty: endpoint, bucket, region as they
 * are, access_key and secret_key decrypted with key. A stored endpoint
 * selects the s3 sink (the admin configured a bucket) even when ARCHIVE_SINK
 * is dir. used receives which source each field came from (never a value).
 * Returns 0, MCS_EPARSE (not a JSON object), MCS_ETOOBIG (a field too long)
 * or the secret_decrypt code (no key, wrong key, altered text): then err
 * says which field, and out must not be used. */
int storage_settings_merge(const struct mcs_config *env, const char *json,
                           const struct mcs_secret_key *key, struct mcs_config *out, char *used,
                           size_t usedn, char *err, size_t errn);

/* sink_open over the merged settings: reads system_config 'storage' through
 * pg (NULL: .env only), loads the key from MCS_SECRET_KEY /
 * MCS_SECRET_KEY_FILE of cfg, logs the sources, opens the sink. Returns 0 or
 * MCS_EDB (the query failed), an error of storage_settings_merge or of
 * sink_open, with the reason in err. */
int storage_sink_open(const struct mcs_config *cfg, PGconn *pg, const _Atomic int *stop,
                      struct mcs_sink **out, char *err, size_t errn);

#endif

/* backup.h - the weekly full backup of R-ST-5 (issue #10): pg_dump -Fc
 * streamed into the sink as backup/YYYY/MM/mcs_YYYYMMDD.dump (multipart when
 * large), verified (size and ETag/MD5, then read back through pg_restore
 * --list), recorded in backup_logs, older backups beyond BACKUP_KEEP
 * deleted; and the restore path into an empty database.
 * Owns nothing persistent; runs pg_dump/pg_restore as child processes.
 * Thread: the caller's. */
#ifndef MCS_BACKUP_H
#define MCS_BACKUP_H

#include "config.h"
#include "sink.h"

#include <stddef.h>
#include <stdint.h>

/* The key of the backup taken on local day `day`. */
void backup_key(int64_t day, char *out, size_t n);

/* The newest backup key in the sink into out. Returns 0, MCS_ENOTFOUND or
 * a transfer error. */
int backup_latest(struct mcs_sink *k, char *out, size_t n, char *err, size_t errn);

/* Streams object `key` (or the newest backup when key is "latest") into
 * pg_restore, loading database `dbname` on the configured server (it must
 * exist and be empty). Returns 0 or an error with the reason in err. */
int backup_restore(const struct mcs_config *cfg, const char *key, const char *dbname,
                   char *err, size_t errn);

#endif

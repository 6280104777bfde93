/* history.h - one history across hot and cold data (issue #10, beyond the
 * seed): readings of one device in [from, to) from the database for days
 * still there, and from the archive files of days archive_logs says are
 * archived, fetched from the sink into a local cache bounded by
 * HISTORY_CACHE_MB (least recently used files evicted). Rows come out in time
 * order as CSV lines in the archive format (ARCHIVE_CSV_HEADER), with times
 * in the plant's zone. For mcs-api (device history, data query, exports)
 * and `mcs history`.
 * Owns its cache directory. Thread: the caller's; the cache may be shared by
 * processes (files appear by rename only). */
#ifndef MCS_HISTORY_H
#define MCS_HISTORY_H

#include "config.h"

#include <libpq-fe.h>
#include <stdint.h>

/* Called per row with one CSV line (no newline); non-zero stops. */
typedef int (*history_row_cb)(void *arg, const char *line, size_t len);

struct history_stats {
    int hot_days, cold_days, cache_hits, cache_misses;
    int64_t rows;
};

/* Streams sn's readings in [from_s, to_s) (Unix s) to cb. pg is in no
 * transaction. Returns 0 or an MCS_E code (reason in err): MCS_EINVAL for a
 * bad SN or range, MCS_ETOOBIG past 366 days or 2 M rows a day for one
 * device, MCS_EIO when an archived day cannot be fetched. */
int history_query(const struct mcs_config *cfg, PGconn *pg, const char *sn, int64_t from_s,
                  int64_t to_s, history_row_cb cb, void *arg, struct history_stats *st,
                  char *err, size_t errn);

/* Parses a time argument: Unix seconds, "YYYY-MM-DD" (local midnight), or
 * "YYYY-MM-DDTHH:MM[:SS]" with "Z", "+HH:MM", "+HHMM", "+HH" or no zone
 * (local). Returns 0 or MCS_EPARSE. */
int history_parse_time(const char *s, int64_t *out);

/* The time (first field) of a row given to a history_row_cb, in
 * microseconds since the epoch. Returns 0 or MCS_EPARSE. */
int history_row_time(const char *line, size_t len, int64_t *us);

/* `mcs history SN START END`: CSV with header on stdout. */
int history_cli(const struct mcs_config *cfg, const char *sn, const char *start,
                const char *end);

#endif

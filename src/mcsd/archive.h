/* archive.h - the daily archive of R-ST-4 (issue #10, docs/ARCHIVE.md): each
 * whole local day older than DATA_RETENTION_DAYS, oldest first, streamed
 * COPY → CSV → gzip → sink (multipart when large), verified, recorded in
 * archive_logs and only then dropped, in one transaction that also checks
 * that the rows dropped are the rows in the file.
 * Owns nothing persistent. Thread: the caller's (scheduler or mcs CLI). */
#ifndef MCS_ARCHIVE_H
#define MCS_ARCHIVE_H

#include "config.h"
#include "sink.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>

/* The object key of a local day: archive/YYYY/MM/sensor_data_YYYYMMDD.csv.gz. */
void archive_key(int64_t day, char *out, size_t n);

/* The CSV header of every archive file. */
#define ARCHIVE_CSV_HEADER "time,sn,v_raw,ppm,temp,humi,bat,rssi,seq"

struct archive_day_result {
    int64_t rows;
    int64_t bytes;
    char md5[33];
    char status[16]; /* archived, merged (late rows into a new version), empty, skipped */
};

/* Archives one local day (see above) on pg, which must be in no
 * transaction. Returns 0 (r says what happened) or a negative MCS_E code
 * with the reason in err; on error nothing is deleted and archive_logs
 * holds status 'failed'. */
int archive_day(PGconn *pg, struct mcs_sink *k, const struct mcs_config *cfg, int64_t day,
                const _Atomic int *stop, struct archive_day_result *r, char *err, size_t errn);

/* The local days, oldest first, that hold or may hold sensor_data and are
 * wholly older than the retention at `now` (native: the partitions;
 * TimescaleDB: from the oldest row). Returns the count (at most max) or
 * MCS_EDB. */
int archive_due_days(PGconn *pg, const struct mcs_config *cfg, int64_t now, int64_t *days,
                     int max, char *err, size_t errn);

/* Streams the stored archive file of local day `day` (as archive_logs
 * records it: status 'archived') to cb, for the API's download endpoint (a
 * streamed proxy) and `mcs archive get`. Opens the configured sink itself.
 * Returns 0, MCS_ENOTFOUND (no archived file for that day) or an error. */
int archive_download(const struct mcs_config *cfg, PGconn *pg, int64_t day,
                     int (*cb)(void *arg, const void *p, size_t n), void *arg, char *err,
                     size_t errn);

#endif

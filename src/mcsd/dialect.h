/* dialect.h - the two storage back ends of sensor_data (R-ST-2): TimescaleDB
 * hypertable or native declarative daily partitions, behind one small vtable.
 * Owns nothing but the DDL it issues. Thread: whichever owns the connection. */
#ifndef MCS_DIALECT_H
#define MCS_DIALECT_H

#include <libpq-fe.h>
#include <stdint.h>

struct mcs_dialect {
    const char *name;
    /* Makes sure the partitions for local days [from_day, to_day] exist
     * (day numbers of the plant's calendar, localday.h: each partition runs
     * from that day's local midnight to the next). Returns 0 or MCS_EDB. */
    int (*ensure_days)(PGconn *pg, int64_t from_day, int64_t to_day);
    /* Locks local day `day` so that no row can enter or leave it until the
     * caller's transaction ends (archive.c: between its count and its drop).
     * Native: ACCESS EXCLUSIVE on the day's partition. TimescaleDB: SHARE
     * UPDATE EXCLUSIVE on the hypertable (no chunk can be created in the
     * day meanwhile; plain inserts still run) and ACCESS EXCLUSIVE on every
     * chunk that overlaps the day. Returns 0 or MCS_EDB (err filled). */
    int (*lock_day)(PGconn *pg, int64_t day, char *err, size_t errn);
    /* Removes one local day of data (archive.c, after the day is verified
     * in the archive and locked by lock_day; the caller holds the
     * transaction). Native: drops the partition. TimescaleDB: drops the
     * chunks that lie inside the day whole; rows of the day in a chunk that
     * reaches past it (one made by TimescaleDB itself on UTC days) are
     * deleted under the lock. Returns 0 or MCS_EDB. */
    int (*drop_day)(PGconn *pg, int64_t day);
};

extern const struct mcs_dialect mcs_dialect_native;
extern const struct mcs_dialect mcs_dialect_timescale;

/* Picks the dialect by what sensor_data is: a declaratively partitioned
 * table is native, anything else (a hypertable) TimescaleDB. Returns the
 * native one when the query fails. */
const struct mcs_dialect *dialect_detect(PGconn *pg);

/* Logs, once before migrations, why a server with TimescaleDB installed
 * gets native partitions: the extension is available but not in
 * shared_preload_libraries (CREATE EXTENSION would fail, migration 001
 * then picks native partitions). Never fails. */
void dialect_log_choice(PGconn *pg);

/* Partition name for a day: sensor_data_YYYYMMDD. */
void dialect_partition_name(int64_t day, char *out, size_t n);

#endif

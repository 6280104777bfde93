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
    /* Removes one local day of data wholesale (archive.c, after the day is
     * verified in the archive; the caller holds the transaction). With
     * TimescaleDB, whose 1-day chunks are UTC-aligned, the day's rows are
     * deleted instead. */
    int (*drop_day)(PGconn *pg, int64_t day);
};

extern const struct mcs_dialect mcs_dialect_native;
extern const struct mcs_dialect mcs_dialect_timescale;

/* Picks the dialect by looking for the timescaledb extension. Returns the
 * native one when the query fails. */
const struct mcs_dialect *dialect_detect(PGconn *pg);

/* Partition name for a day: sensor_data_YYYYMMDD. */
void dialect_partition_name(int64_t day, char *out, size_t n);

#endif

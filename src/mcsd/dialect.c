/* dialect.c - native partitions and TimescaleDB, by their documented SQL.
 * Owns the DDL for sensor_data partitions. Thread: caller's. */
#include "dialect.h"
#include "conn.h"
#include "err.h"
#include "localday.h"
#include "log.h"

#include <stdio.h>
#include <time.h>

void dialect_partition_name(int64_t day, char *out, size_t n)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "sensor_data_%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* The instant local day `day` begins (plant TZ, localday.h), as a UTC
 * timestamp literal "YYYY-MM-DD HH:MM:SS+00". Days are local calendar days
 * since issue #10 (migration 030), so that the archive drops a day whole. */
static void day_str(int64_t day, char *out, size_t n)
{
    time_t t = (time_t)mcs_local_midnight(day);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d+00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int native_ensure(PGconn *pg, int64_t from_day, int64_t to_day)
{
    for(int64_t d = from_day; d <= to_day; d++) {
        char name[64], lo[48], hi[48], sql[512], err[512];
        dialect_partition_name(d, name, sizeof(name));
        day_str(d, lo, sizeof(lo));
        day_str(d + 1, hi, sizeof(hi));
        /* Names and bounds are generated here from integers, never from
         * input, so formatting them into DDL is safe. */
        snprintf(sql, sizeof(sql),
                 "CREATE TABLE IF NOT EXISTS %s PARTITION OF sensor_data "
                 "FOR VALUES FROM ('%s') TO ('%s')",
                 name, lo, hi);
        /* Two instances creating the same partition at once can collide on
         * the catalog even with IF NOT EXISTS: the second attempt sees it. */
        if(mcs_pg_exec(pg, sql, err, sizeof(err)) && mcs_pg_exec(pg, sql, err, sizeof(err))) {
            LOG_W("dialect", "cannot create partition", LS("partition", name), LS("error", err));
            return MCS_EDB;
        }
    }
    return 0;
}

static int native_drop(PGconn *pg, int64_t day)
{
    char name[64], sql[256], err[512];
    dialect_partition_name(day, name, sizeof(name));
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", name);
    return mcs_pg_exec(pg, sql, err, sizeof(err)) ? MCS_EDB : 0;
}

static int ts_ensure(PGconn *pg, int64_t from_day, int64_t to_day)
{
    (void)pg;
    (void)from_day;
    (void)to_day;
    return 0; /* TimescaleDB creates chunks as rows arrive */
}

static int ts_drop(PGconn *pg, int64_t day)
{
    char lo[48], hi[48], sql[256], err[512];
    day_str(day, lo, sizeof(lo));
    day_str(day + 1, hi, sizeof(hi));
    snprintf(sql, sizeof(sql),
             "DELETE FROM sensor_data WHERE time >= '%s' AND time < '%s'", lo, hi);
    return mcs_pg_exec(pg, sql, err, sizeof(err)) ? MCS_EDB : 0;
}

const struct mcs_dialect mcs_dialect_native = {"native", native_ensure, native_drop};
const struct mcs_dialect mcs_dialect_timescale = {"timescaledb", ts_ensure, ts_drop};

const struct mcs_dialect *dialect_detect(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'");
    const struct mcs_dialect *d = &mcs_dialect_native;
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        d = &mcs_dialect_timescale;
    PQclear(r);
    return d;
}

/* dialect.c - native partitions and TimescaleDB, by their documented SQL.
 * Owns the DDL for sensor_data partitions. Thread: caller's. */
#include "dialect.h"
#include "conn.h"
#include "err.h"
#include "localday.h"
#include "log.h"

#include <inttypes.h>
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

static int native_lock(PGconn *pg, int64_t day, char *err, size_t errn)
{
    char name[64], sql[160];
    dialect_partition_name(day, name, sizeof(name));
    snprintf(sql, sizeof(sql), "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", name);
    return mcs_pg_exec(pg, sql, err, errn) ? MCS_EDB : 0;
}

static int native_drop(PGconn *pg, int64_t day)
{
    char name[64], sql[256], err[512];
    dialect_partition_name(day, name, sizeof(name));
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", name);
    return mcs_pg_exec(pg, sql, err, sizeof(err)) ? MCS_EDB : 0;
}

/* TimescaleDB cuts chunks on multiples of chunk_time_interval since the
 * Unix epoch, that is UTC days, and has no origin setting. The local day's
 * chunk is therefore made ahead of time with explicit bounds (migration
 * 075, mcs_ts_ensure_day); a row that still lands where no chunk is gets
 * one TimescaleDB cuts around the existing ones. */
static int ts_ensure(PGconn *pg, int64_t from_day, int64_t to_day)
{
    char sql[256], err[512], a[16], b[16];
    mcs_day_iso(from_day, a, sizeof(a));
    mcs_day_iso(to_day, b, sizeof(b));
    snprintf(sql, sizeof(sql),
             "SELECT mcs_ts_ensure_day(d::date, current_setting('mcs.tz'))"
             " FROM generate_series('%s'::date, '%s'::date, interval '1 day') d",
             a, b);
    if(mcs_pg_exec(pg, sql, err, sizeof(err)) && mcs_pg_exec(pg, sql, err, sizeof(err))) {
        LOG_W("dialect", "cannot create chunks", LS("from", a), LS("to", b), LS("error", err));
        return MCS_EDB;
    }
    return 0;
}

/* The day's bounds as to_timestamp() arguments: "lo, hi" in Unix seconds. */
static void day_bounds(int64_t day, char *lo, char *hi, size_t n)
{
    snprintf(lo, n, "%" PRId64, mcs_local_midnight(day));
    snprintf(hi, n, "%" PRId64, mcs_local_midnight(day + 1));
}

static int ts_lock(PGconn *pg, int64_t day, char *err, size_t errn)
{
    char lo[24], hi[24];
    day_bounds(day, lo, hi, sizeof(lo));
    const char *p[2] = {lo, hi};
    if(mcs_pg_exec(pg, "LOCK TABLE sensor_data IN SHARE UPDATE EXCLUSIVE MODE", err, errn))
        return MCS_EDB;
    PGresult *r = mcs_pg_query(pg, "SELECT mcs_ts_lock_day(to_timestamp($1::bigint),"
                                   " to_timestamp($2::bigint))",
                               2, p, PGRES_TUPLES_OK, err, errn);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

static int ts_drop(PGconn *pg, int64_t day)
{
    /* The chunks inside the day go whole; rows of the day in a chunk that
     * reaches past it (cut by TimescaleDB on UTC days) are deleted. */
    static const char *const sql[2] = {
        "SELECT count(*) FROM drop_chunks('sensor_data', older_than => to_timestamp($2::bigint),"
        " newer_than => to_timestamp($1::bigint))",
        "DELETE FROM sensor_data WHERE time >= to_timestamp($1::bigint)"
        " AND time < to_timestamp($2::bigint)"};
    static const ExecStatusType want[2] = {PGRES_TUPLES_OK, PGRES_COMMAND_OK};
    char lo[24], hi[24], err[512];
    day_bounds(day, lo, hi, sizeof(lo));
    const char *p[2] = {lo, hi};
    for(int i = 0; i < 2; i++) {
        PGresult *r = mcs_pg_query(pg, sql[i], 2, p, want[i], err, sizeof(err));
        if(!r) {
            LOG_W("dialect", "dropping the day failed", LS("step", i ? "delete" : "drop_chunks"),
                  LS("error", err));
            return MCS_EDB;
        }
        PQclear(r);
    }
    return 0;
}

const struct mcs_dialect mcs_dialect_native = {"native", native_ensure, native_lock, native_drop};
const struct mcs_dialect mcs_dialect_timescale = {"timescaledb", ts_ensure, ts_lock, ts_drop};

const struct mcs_dialect *dialect_detect(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT NOT EXISTS (SELECT 1 FROM pg_partitioned_table"
                             " WHERE partrelid = 'sensor_data'::regclass)"
                             " AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')");
    const struct mcs_dialect *d = &mcs_dialect_native;
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't')
        d = &mcs_dialect_timescale;
    PQclear(r);
    return d;
}

void dialect_log_choice(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions"
                             " WHERE name = 'timescaledb'),"
                             " current_setting('shared_preload_libraries') ~ '(^|[\\s,\"])timescaledb($|[\\s,\"])',"
                             " to_regclass('sensor_data') IS NOT NULL");
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        int avail = PQgetvalue(r, 0, 0)[0] == 't', pre = PQgetvalue(r, 0, 1)[0] == 't';
        int made = PQgetvalue(r, 0, 2)[0] == 't';
        if(avail && !pre && !made)
            LOG_W("dialect",
                  "timescaledb is installed but not in shared_preload_libraries: sensor_data "
                  "gets native partitions (add it to shared_preload_libraries and restart "
                  "PostgreSQL before the first migration to use TimescaleDB)");
    }
    PQclear(r);
}

/* health.h - the monitoring thresholds of the manual's §8.4 as system
 * alarms (issue #15): disk, memory, CPU over a sustained window, the
 * devices' online rate, the message rate against the same hour of earlier
 * days, database connections against max_connections, the journal backlog
 * growing run after run. Each is raised once
 * (sn 'SYSTEM', a repeat only counts) and cleared once, past a hysteresis
 * band, by the health job (jobs.c), whichever process runs it (mcsd's
 * scheduler or `mcs job run health`). Settings: alarm.general.system.health.
 * Owns nothing persistent. Thread: the caller's; pg is the job's own. */
#ifndef MCS_HEALTH_H
#define MCS_HEALTH_H

#include "config.h"

#include <libpq-fe.h>
#include <stddef.h>

struct health_limits {
    double disk_pct;      /* DISK_HIGH when the spool disk is fuller (80) */
    double mem_pct;       /* MEM_HIGH when memory in use is above (80) */
    double cpu_pct;       /* CPU_HIGH when the average since the last run is above (80) */
    double cpu_min;       /* ... over at least this many minutes (5) */
    double online_pct;    /* ONLINE_LOW when fewer devices report (90) */
    double rate_drop_pct; /* MSG_RATE_DROP when the last hour fell this much (50) */
    double db_conn_pct;   /* DB_CONN_HIGH at this share of max_connections (80) */
    double hyst_pct;      /* clear only this many points back inside (5) */
    double backlog_runs;  /* JOURNAL_BACKLOG after this many runs of growth (3) */
    double offline_s;     /* a device is online when it reported this recently (90) */
};

/* The settings of alarm.general.system.health: key, default, bounds and
 * place in struct health_limits; ended by a NULL key. One table for mcsd's
 * parsing and mcs-api's validation. */
struct health_field {
    const char *key;
    double def, lo, hi;
    size_t off;
};
extern const struct health_field health_fields[];

/* Defaults, then alarm.general (JSON text; NULL: defaults) over them:
 * system.health.{disk_pct, mem_pct, cpu_pct, cpu_min, online_pct,
 * rate_drop_pct, db_conn_pct, hysteresis_pct, backlog_runs} and offline_s. Values out of
 * their bounds keep the default (mcs-api rejects them when they are set). */
void health_limits_parse(struct health_limits *l, const char *general_json);

/* 1 when an alarm with this value should be raised, -1 when it should be
 * cleared, 0 to leave it as it is (inside the hysteresis band). high: the
 * alarm is for a value above limit (else below). A value < 0 (unknown) is
 * 0. */
int health_decide(double value, double limit, double hyst, int high);

/* Measures every threshold, raises and clears the system alarms, and
 * appends to detail (a JSON object's members, starting with ',') what it
 * measured, including what the next run compares with: the CPU sample and
 * the journal backlog (host = this machine's name). cfg->spool_dir is the
 * disk measured and the journal whose backlog (bytes of records after
 * cfg->instance_id's checkpoint in ingest_checkpoint) is watched. Returns 0
 * or MCS_EDB (what was decided before the failure stays). */
int health_check(PGconn *pg, const struct mcs_config *cfg, char *detail, size_t detailn);

#endif

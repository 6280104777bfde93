/* metrics.h - counters of one mcsd process (received, rejected by reason,
 * stored, ...) and the publish→commit latency histogram. Published to Redis
 * hash mcs:metrics:{instance} by the store thread (cache.c).
 * Owns the counters. Thread: counters are atomics written by any thread; the
 * histogram is written and read by the store thread only. */
#ifndef MCS_METRICS_H
#define MCS_METRICS_H

#include "payload.h"

#include <stdatomic.h>
#include <stdint.h>

/* Latency buckets: 0.25 ms wide up to 1024 ms, then 1 % wider each, up to
 * about 20 minutes; beyond that the largest value seen is kept. */
#define MCS_LAT_LINEAR 4096
#define MCS_LAT_STEP_US 250
#define MCS_LAT_BUCKETS (MCS_LAT_LINEAR + 1400)

struct mcs_metrics {
    _Atomic uint64_t received, accepted, status_msgs, rejected;
    _Atomic uint64_t rej[MCS_REJ_COUNT];
    _Atomic uint64_t stored, duplicates, batches, store_failed;
    _Atomic uint64_t spool_lost;
    /* Hardening (issue #6): connections dropped so that refused QoS 1
     * messages stay unacknowledged; batches retried after a transient
     * database error; rows moved to sensor_quarantine; journal records
     * skipped as corrupt and bytes lost in torn segments at open. */
    _Atomic uint64_t unacked_drops, store_retries, quarantined;
    /* Readings received while the license is locked, not stored (issue #17). */
    _Atomic uint64_t unlicensed;
    _Atomic uint64_t journal_bad_records, journal_gap_bytes;
    _Atomic int db_up, redis_up, mqtt_connected;
    /* From the broker's $SYS tree (every sys_interval, default 10 s): its
     * count of dropped publishes (QoS 0 messages a slow subscriber could not
     * take, among others) and of connected clients. -1 until known. */
    _Atomic int64_t broker_dropped, broker_clients;
    uint64_t lat_count;
    uint64_t lat[MCS_LAT_BUCKETS + 1];
    uint64_t lat_over_max_us;
};

void metrics_init(struct mcs_metrics *m);
/* Counts one rejection (and the total). */
void metrics_reject(struct mcs_metrics *m, int reason);
/* Store thread: adds one latency sample in microseconds. */
void metrics_latency(struct mcs_metrics *m, int64_t us);
/* Store thread: the p-th percentile (0..100) in milliseconds, or 0 without
 * samples. */
double metrics_latency_pct(const struct mcs_metrics *m, double p);

#endif

/* cache.h - the Redis side of mcsd (R-ST-7, R-PR-3): online:{sn},
 * realtime:{sn}, calib:{sn}, device:{sn}, metrics. Commands are pipelined:
 * appended, then flushed with one round trip. Redis being down never blocks
 * ingest: calls fail fast and reconnect is retried at most every 2 s.
 * Owns one redisContext per struct mcs_cache. Thread: the owner thread only. */
#ifndef MCS_CACHE_H
#define MCS_CACHE_H

#include "calib.h"
#include "config.h"
#include "journal.h"
#include "metrics.h"

#include <hiredis/hiredis.h>
#include <stdint.h>

struct mcs_cache {
    const struct mcs_config *cfg;
    redisContext *c;
    int pending;          /* replies owed by the server */
    int64_t next_try_ms;  /* earliest reconnect */
    int backoff_ms;       /* next reconnect delay */
    unsigned generation;  /* incremented at every (re)connect */
};

void cache_init(struct mcs_cache *k, const struct mcs_config *cfg);
void cache_cleanup(struct mcs_cache *k);
/* Returns 1 when connected (connecting if due), 0 otherwise. */
int cache_ready(struct mcs_cache *k);

/* Appends the commands for a stored reading: SETEX realtime:{sn} 30 <json>
 * when realtime is set, SETEX online:{sn} 90 <last_seen> when online is set. */
void cache_put_reading(struct mcs_cache *k, const struct mcs_jrec *r, int realtime, int online,
                       int64_t last_seen);
/* Appends DEL online:{sn} (Last Will / offline status). */
void cache_put_offline(struct mcs_cache *k, const char *sn);
/* Appends SETEX calib:{sn} 3600 <json> (troubleshooting view, R-OP-5). */
void cache_put_calib(struct mcs_cache *k, const char *sn, const struct mcs_calib *c);
/* Appends DEL device:{sn} calib:{sn} (the device changed). */
void cache_put_invalidate(struct mcs_cache *k, const char *sn);

/* Appends the metrics hash and instance set. */
struct mcs_metrics_extra {
    uint32_t devices;
    int64_t spool_bytes;
    long rss_kb;
    /* The alarm engine's memory between batches (alarm_stats): devices
     * with an open-alarm hint, bytes of its per-device state. */
    size_t alarm_open_devs, alarm_state_bytes;
    /* Command results written to device_commands, and those lost because
     * the queue was full (cmdres.h, issue #20). */
    uint64_t cmd_results, cmd_results_dropped;
};
void cache_put_metrics(struct mcs_cache *k, struct mcs_metrics *m,
                       const struct mcs_metrics_extra *x);

/* Sends everything appended and reads all replies. Returns 0 or MCS_EREDIS
 * (then the connection is dropped and retried later). */
int cache_flush(struct mcs_cache *k);

/* The two halves of cache_flush, so that Redis works while we do something
 * else: cache_send writes the appended commands; cache_collect reads the
 * replies owed (by then usually already in the socket buffer). */
int cache_send(struct mcs_cache *k);
int cache_collect(struct mcs_cache *k);

#endif

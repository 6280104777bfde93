/* feed.h - the threads that feed the dashboard WebSocket (R-API-5): a
 * ticker that builds the `realtime` frame every second from the device
 * list (PostgreSQL), realtime:/online: keys (Redis) and active alarms, and a
 * Redis subscriber of `mcs:alarm` whose events become `alarm` frames at
 * once. Both hand frames to the lws loop through a locked mailbox and
 * lws_cancel_service() (the only thread-safe lws call).
 * Owns its two threads and their own database/Redis connections. */
#ifndef MCS_FEED_H
#define MCS_FEED_H

#include "api.h"

#include <stdatomic.h>
#include <stddef.h>

/* A reference-counted frame with LWS_PRE bytes of head room before data. */
struct api_msg {
    atomic_int refs;
    int64_t built_ms; /* wall clock: when a realtime frame was built, else 0 */
    size_t len;
    unsigned char *data; /* = buf + LWS_PRE */
    unsigned char buf[];
};

/* A frame holding a copy of s (len bytes), refs 1. NULL when out of memory. */
struct api_msg *msg_new(const char *s, size_t len);
void msg_ref(struct api_msg *m);
void msg_unref(struct api_msg *m);

/* Starts both threads. 0 or MCS_ENOMEM. */
int feed_start(struct api_ctx *ctx);
/* Stops and joins them; frees the mailbox. */
void feed_stop(struct api_ctx *ctx);

/* Loop thread: the newest realtime frame since the last call (the caller
 * owns the reference) or NULL. */
struct api_msg *feed_take_realtime(struct api_feed *f);
/* Loop thread: up to max queued alarm frames, oldest first; returns count. */
int feed_take_alarms(struct api_feed *f, struct api_msg **out, int max);

/* Readings accepted by the workers in the last minute (from their counters),
 * -1 while unknown. Any thread. */
long feed_msgs_per_min(struct api_feed *f);
/* Alarm events dropped because the mailbox was full, and frames built. */
void feed_counts(struct api_feed *f, uint64_t *alarm_events, uint64_t *alarm_dropped,
                 uint64_t *realtime_frames);

#endif

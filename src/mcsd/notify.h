/* notify.h - the notifier of mcsd (issues #7, #15, R-AL-5, R-AL-6): one
 * thread per channel delivering the durable outbox one message at a time
 * (a lease committed before the send, the outcome committed right after it,
 * no lock held across network I/O: a crash repeats at most the request in
 * flight), retries with bounded backoff, per-platform rate limits (sleeping
 * until the budget refills), digests and mcs-api's test sends; and one
 * housekeeping thread: alarm.general refresh for the engine, OFFLINE by
 * silence, reminders, escalation, and the relay of NOTIFY mcs_alarm to
 * Redis PUBLISH mcs:alarm.
 * Owns the alarm engine (d->alarm) and its threads' connections.
 * Thread: started and stopped by main. */
#ifndef MCS_NOTIFY_H
#define MCS_NOTIFY_H

#include "mcsd.h"

struct mcs_notify;

/* Creates d->alarm and starts the threads (nothing when ALARMS_ENABLED=0).
 * Call before store_start. Returns 0 or MCS_ENOMEM. */
int notify_start(struct mcsd *d, struct mcs_notify **out);

/* Stops the notifier threads, waiting for them until deadline_ms
 * (mcs_mono_ms clock): requests in flight may finish (and their outcomes
 * commit) until a second before it, then they are cancelled. Returns 0
 * (freed), or MCS_ETIMEDOUT when a request was still running: then nothing
 * is freed (the process is exiting). */
int notify_stop(struct mcs_notify *n, int64_t deadline_ms);

/* Checks that the secret of every enabled channel in system_config can be
 * decrypted with this configuration's MCS_SECRET_KEY (mcsd --check-config,
 * and a log line at start). Returns 0, MCS_EINVAL with the channels and the
 * reason in err, or MCS_EDB (database unavailable, said in err). Thread:
 * any; opens its own connection. */
int notify_check_secrets(const struct mcs_config *cfg, char *err, size_t errn);

#endif

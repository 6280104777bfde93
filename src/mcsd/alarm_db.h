/* alarm_db.h - the alarm engine of mcsd (issue #7): applies the rules of
 * alarm.h to the journal records of one store batch inside the store
 * thread's transaction (alarm rows, debounce state and outbox rows commit
 * with the readings and the journal checkpoint: exactly once across kill -9),
 * serialised per device in PostgreSQL (SELECT ... FOR UPDATE on open alarms,
 * the partial unique index for raises) so that two instances never hold two
 * open alarms of one (sn, type).
 * Owns its per-device memory (hints of open alarms: alarm_state.h; the
 * scratch of one batch) and the settings (alarm.general) that the notifier
 * thread refreshes. Reads each device's gas limits from the registry.
 * Thread: alarm_eval_batch in the store thread only; alarm_cfg_* any. */
#ifndef MCS_ALARM_DB_H
#define MCS_ALARM_DB_H

#include "alarm.h"
#include "journal.h"
#include "registry.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>

/* alarm.general (docs/ALARMS.md). */
struct alarm_cfg {
    double debounce_s;
    double hyst_pct;
    double offline_s;
    int reminders;
    int level2_override;
    struct alarm_schedule sched;
    char tz[64];
    int tz_offset_s;
    int escalation;
    double escalate_after_s;
    int max_attempts;
    double backoff_s, backoff_max_s;
    int digest_threshold;
};

/* Defaults as in migration 010. */
void alarm_cfg_defaults(struct alarm_cfg *c);
/* Parses the JSON of alarm.general over the defaults; unknown keys are
 * ignored, bad values keep the default. Returns 0 or MCS_EPARSE. */
int alarm_cfg_parse(struct alarm_cfg *c, const char *json);
/* Reads alarm.general and the UTC offset of its time zone (autocommit, not
 * inside someone's transaction). Returns 0 or MCS_EDB. */
int alarm_cfg_load(PGconn *pg, struct alarm_cfg *c);

struct alarm_engine;

/* Creates the engine for this instance. reg (borrowed, outlives the engine)
 * gives each device's alarm_high/alarm_low for the cheap filter; NULL: only
 * open alarms and the non-gas conditions are noticed. Returns NULL on
 * allocation failure. */
struct alarm_engine *alarm_engine_new(const char *instance_id, struct mcs_registry *reg);
void alarm_engine_free(struct alarm_engine *e);

/* Replaces the settings the engine decides with (any thread). */
void alarm_engine_set_cfg(struct alarm_engine *e, const struct alarm_cfg *c);
void alarm_engine_get_cfg(struct alarm_engine *e, struct alarm_cfg *c);

/* Decides the alarms of recs[0..n) in journal order inside the caller's open
 * transaction on pg (store thread). Row locks are taken in one global order
 * (sn, alarm type), so two instances deciding crossing devices cannot
 * deadlock on each other. Returns 0; MCS_EAGAIN when a statement failed on a
 * live connection (deadlock, lock or statement timeout, refused statement:
 * logged, counted; the caller must roll the whole batch back and retry it,
 * so that readings never commit without their decisions); MCS_EDB when the
 * connection is lost. err says why. */
int alarm_eval_batch(struct alarm_engine *e, PGconn *pg, const struct mcs_jrec *recs, size_t n,
                     char *err, size_t errn);

/* Counters for metrics/tests, and what the engine keeps between batches
 * (after the last batch): devices with an open-alarm hint and the bytes of
 * all its per-device memory (hints, scratch). A device without an open
 * alarm costs nothing (issue #2: rss_mb_100k). */
struct alarm_stats {
    unsigned long long raised, cleared, notified, suppressed, errors;
    size_t dev_open, state_bytes;
};
void alarm_engine_stats(struct alarm_engine *e, struct alarm_stats *out);

/* Raises (sn, type) unless open, and writes its notification (debounce,
 * schedule) — the path of alarms found outside a batch (OFFLINE by silence).
 * In the caller's transaction. Returns 1 raised, 0 already open, MCS_EDB. */
int alarm_raise_one(PGconn *pg, const struct alarm_cfg *cfg, const char *instance,
                    const char *sn, int type, int level, double value, double threshold);

/* Writes the outbox rows of one notification event for alarm_id on every
 * enabled channel: held outside the schedule, skipped inside the debounce
 * window unless force (level 2, reminders decide themselves). In the
 * caller's transaction. Returns rows written (0 = debounced/no channel) or
 * MCS_EDB. */
int alarm_notify_event(PGconn *pg, const struct alarm_cfg *cfg, long long alarm_id,
                       const char *sn, const char *type, const char *event, int level,
                       int force);

#endif

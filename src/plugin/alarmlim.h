/* alarmlim.h - rate limiting of UNKNOWN_DEVICE system alarms (R-MQ-7).
 * A device with the right password but an SN that is not registered keeps
 * retrying; that must become ONE alarm record, not one per attempt:
 *  - an SN raises an alarm after `min_attempts` attempts;
 *  - at most one alarm per SN per `window_ms`; further attempts inside the
 *    window only add to that alarm's count (one UPDATE per flush);
 *  - at most `max_per_min` new alarms per minute over all SNs;
 *  - at most `max_tracked` SNs are remembered (the stalest is dropped).
 * Pure bookkeeping: the caller does the database writes and reports back.
 * Owns its table. Thread: the plugin's sync thread only. */
#ifndef MCS_ALARMLIM_H
#define MCS_ALARMLIM_H

#include <stddef.h>
#include <stdint.h>

#define ALARMLIM_SN_MAX 32
#define ALARMLIM_ADDR_MAX 64

struct alarmlim_cfg {
    uint32_t min_attempts;
    int64_t window_ms;
    uint32_t max_per_min;
    size_t max_tracked;
};

struct alarmlim_sn {
    char sn[ALARMLIM_SN_MAX + 1];
    char addr[ALARMLIM_ADDR_MAX]; /* client address of the latest attempt */
    uint32_t attempts;            /* since first_ms (before an alarm) */
    uint32_t pending;             /* attempts not yet written to the alarm */
    int64_t first_ms, last_ms;
    int64_t raised_ms; /* 0: no alarm in the current window */
    int64_t alarm_id;  /* alarm_logs.id of the current window's alarm */
};

struct alarmlim {
    struct alarmlim_cfg cfg;
    struct alarmlim_sn *v;
    size_t n;
    int64_t minute_start_ms;
    uint32_t raised_in_minute;
    uint64_t suppressed; /* alarms held back by the global cap (counted once per SN and minute) */
};

enum alarmlim_action {
    ALARMLIM_NONE = 0,
    ALARMLIM_RAISE, /* insert a new alarm with `count` attempts */
    ALARMLIM_COUNT, /* add `count` attempts to alarm `alarm_id` */
};

struct alarmlim_work {
    enum alarmlim_action action;
    char sn[ALARMLIM_SN_MAX + 1];
    char addr[ALARMLIM_ADDR_MAX];
    uint32_t count;
    int64_t alarm_id;
};

/* Returns 0 or MCS_ENOMEM. */
int alarmlim_init(struct alarmlim *l, const struct alarmlim_cfg *cfg);
void alarmlim_cleanup(struct alarmlim *l);

/* Records one refused attempt of sn (valid SN) from addr (may be NULL). */
void alarmlim_note(struct alarmlim *l, const char *sn, const char *addr, int64_t now_ms);

/* Picks the next database write due at now_ms and fills w; returns its
 * action (ALARMLIM_NONE: nothing to do now). The caller performs it and
 * reports with alarmlim_done() before asking again. Forgets SNs that have
 * been quiet for a whole window. */
enum alarmlim_action alarmlim_next(struct alarmlim *l, int64_t now_ms, struct alarmlim_work *w);

/* Reports the outcome of w: alarm_id > 0 on success (for RAISE: the id of
 * the alarm row, which may be an existing row of this window found in the
 * database after a broker restart), 0 on failure (the attempts stay pending
 * and are retried later; a failed RAISE does not use up the minute's cap). */
void alarmlim_done(struct alarmlim *l, const struct alarmlim_work *w, int64_t alarm_id,
                   int64_t now_ms);

#endif

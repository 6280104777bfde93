/* alarm.h - the pure alarm rules (issue #7, R-AL-1..4): which condition a
 * sample meets, at which level, when an open alarm updates, rises to level 2
 * or clears (hysteresis), and the notification rules (debounce window,
 * reminders, schedule with days/window/time zone offset, level-2 override,
 * escalation). No I/O: alarm_db.c applies these inside the store batch
 * transaction, notify.c in its housekeeping. Thread: any (pure). */
#ifndef MCS_ALARM_H
#define MCS_ALARM_H

#include <stdint.h>

enum alarm_type {
    AL_HIGH = 0,
    AL_LOW,
    AL_OVER_RANGE,
    AL_LOW_BAT,
    AL_DEVICE,
    AL_OFFLINE,
    AL_NTYPES
};

enum alarm_category { AL_CAT_GAS = 0, AL_CAT_FAULT, AL_CAT_SYSTEM };

/* "HIGH", "LOW", ... and back (-1 when unknown). */
const char *alarm_type_name(int type);
int alarm_type_parse(const char *name);
enum alarm_category alarm_type_category(int type);
const char *alarm_category_name(enum alarm_category c);

/* Limits of one device; NaN when not set. hysteresis NaN: hyst_pct % of the
 * limit is used. */
struct alarm_limits {
    double high1, high2, low1, low2;
    double hysteresis;
    double range_max;
};

/* One input in journal order: a reading or a status message. */
struct alarm_sample {
    int is_status;  /* 1: status message (online below), 0: reading */
    int online;     /* status messages */
    double ppm;
    int over_range; /* reading flagged over range */
    int err;        /* device error code (R-MQ-5) */
    int bat;        /* INT32_MIN when not sent */
};

/* What the engine knows of the open alarm of one (device, type). */
struct alarm_open {
    int open;        /* 1 while cleared_at IS NULL */
    int level;       /* 1 or 2 */
    double peak;     /* max for HIGH, min for LOW, last for others */
};

enum alarm_action {
    AL_ACT_NONE = 0, /* nothing to record */
    AL_ACT_RAISE,    /* a new alarm: value, level, threshold */
    AL_ACT_UPDATE,   /* the condition still holds: count, last, peak */
    AL_ACT_LEVEL2,   /* still holds and rose to level 2 (notify at once) */
    AL_ACT_CLEAR     /* the condition ended beyond the hysteresis band */
};

struct alarm_decision {
    enum alarm_action action;
    int level;
    double value;     /* the value that is recorded (ppm, bat, err) */
    double threshold; /* the limit that was crossed */
};

/* Decides what the sample means for one alarm type given its open state
 * and the limits; hyst_pct is alarm.general.hysteresis_pct. Pure. */
void alarm_decide(int type, const struct alarm_limits *lim, double hyst_pct,
                  const struct alarm_open *st, const struct alarm_sample *s,
                  struct alarm_decision *out);

/* Applies a decision to the open state (what the database row becomes). */
void alarm_apply(int type, struct alarm_open *st, const struct alarm_decision *d);

/* 1 when any alarm type would raise for this sample on a device without open
 * alarms (the cheap filter of the batch path). */
int alarm_any_condition(const struct alarm_limits *lim, const struct alarm_sample *s);

/* --- notification rules --- */

struct alarm_schedule {
    int enabled;
    uint8_t days;   /* bit d-1 for ISO day d (1 = Monday … 7 = Sunday) */
    int start_min;  /* minutes after local midnight, 0..1440 */
    int end_min;    /* end < start: the window crosses midnight */
};

/* Parses "HH:MM" (00:00..24:00) into minutes; -1 when malformed. */
int alarm_hhmm_parse(const char *s);

/* Local ISO weekday (1..7) and minute of day for a UTC time and an offset
 * from UTC in seconds. */
void alarm_local_time(int64_t utc_s, int offset_s, int *isodow, int *minute);

/* 1 when notifications may be sent at that local time. A window that
 * crosses midnight belongs to the day it starts on (Friday 22:00-06:00
 * covers Saturday 03:00). start == end means all day. Disabled: always 1. */
int alarm_schedule_allows(const struct alarm_schedule *sc, int isodow, int minute);

/* Whether an event of this level may be sent now under the schedule and
 * the level-2 override. */
int alarm_may_send(const struct alarm_schedule *sc, int level2_override, int level,
                   int64_t utc_s, int offset_s);

/* Whether a raise notifies at once, whatever the debounce window: one at a
 * level-2 gas limit does. OVER_RANGE is level 2 by nature but is debounced
 * like HIGH (issue #15: a sensor hovering at its range maximum notified
 * every cycle on every channel). */
int alarm_raise_forced(int type, int level);

/* Debounce (R-AL-2): a raise notifies when (sn, type) was never notified or
 * last at least window_ms ago; a level-2 event always does. */
int alarm_debounce_ok(int64_t last_notified_ms, int64_t now_ms, int64_t window_ms, int level2);

/* A reminder is due for an open, unacknowledged alarm when the last
 * notification is at least window_ms old. */
int alarm_reminder_due(int open, int acked, int64_t last_notified_ms, int64_t now_ms,
                       int64_t window_ms);

/* Escalation is due once: open, unacknowledged, not escalated yet, raised
 * at least after_ms ago. */
int alarm_escalation_due(int open, int acked, int escalated, int64_t raised_ms, int64_t now_ms,
                         int64_t after_ms);

#endif

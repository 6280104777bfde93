/* alarm_state.h - what the alarm engine (alarm_db.c) remembers of devices
 * between store batches, kept small at 100,000 devices (issue #2,
 * rss_mb_100k): only the open-alarm hints of devices that have an open
 * alarm. The gas limits its filter needs are the registry's (alarm_high,
 * alarm_low, registry.h); the full limits and the per-type state of the
 * devices one batch must decide live in that batch's scratch (alarm_db.c).
 * A device without an open alarm costs nothing here.
 * Owns its map. No I/O. Thread: the store thread (one owner). */
#ifndef MCS_ALARM_STATE_H
#define MCS_ALARM_STATE_H

#include "alarm.h"
#include "hmap.h"

#include <stddef.h>
#include <stdint.h>

struct alarm_state {
    struct hmap open; /* sn -> uint8_t mask of types with an open alarm (hint) */
};

/* Initialises the state empty. Returns 0 or MCS_EIO (libsodium). */
int alarm_state_init(struct alarm_state *s);
/* Frees the map (the state may be used again). NULL is a no-op. */
void alarm_state_cleanup(struct alarm_state *s);

/* The open-alarm hint of sn: the mask of types believed open (0: none). */
uint8_t alarm_state_open_mask(const struct alarm_state *s, const char *sn);
/* Sets the hint of sn; mask 0 removes the device. Returns 0, MCS_EINVAL
 * (bad sn) or MCS_ENOMEM. */
int alarm_state_set_open(struct alarm_state *s, const char *sn, uint8_t mask);
/* ORs type bits into the hint of sn. Returns as alarm_state_set_open. */
int alarm_state_add_open(struct alarm_state *s, const char *sn, uint8_t bits);
/* Forgets every hint (before re-reading the open alarms); frees the map. */
void alarm_state_clear_open(struct alarm_state *s);

/* The two values of a device's limits that decide whether a reading raises
 * a gas alarm: the lower of high1/high2 and the higher of low1/low2 (NaN
 * when neither is set). The registry computes the same in SQL (LEAST,
 * GREATEST) for every device. */
void alarm_state_triggers(const struct alarm_limits *lim, double *high, double *low);

/* 1 when a sample of sn needs the engine's decisions: sn has an open-alarm
 * hint, or the sample meets a condition of any type under the triggers
 * high/low of alarm_state_triggers (the same answer as alarm_any_condition
 * with sn's full limits). */
int alarm_state_interesting(const struct alarm_state *s, const char *sn, double high,
                            double low, const struct alarm_sample *smp);

/* Devices with an open-alarm hint, and the bytes the state holds. */
size_t alarm_state_nopen(const struct alarm_state *s);
size_t alarm_state_bytes(const struct alarm_state *s);

#endif

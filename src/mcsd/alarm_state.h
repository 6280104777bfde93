/* alarm_state.h - what the alarm engine (alarm_db.c) remembers of devices
 * between store batches, kept small at 100,000 devices (issue #2,
 * rss_mb_100k): the gas triggers of devices that have a gas limit, and the
 * open-alarm hints of devices that have an open alarm. A device with neither
 * costs nothing here; the full limits and the per-type state of the devices
 * one batch must decide live in that batch's scratch (alarm_db.c).
 * Owns its two maps. No I/O. Thread: the store thread (one owner). */
#ifndef MCS_ALARM_STATE_H
#define MCS_ALARM_STATE_H

#include "alarm.h"
#include "hmap.h"

#include <stddef.h>
#include <stdint.h>

struct alarm_state {
    struct hmap trig; /* sn -> struct alarm_trig, devices with a gas limit only */
    struct hmap open; /* sn -> uint8_t mask of types with an open alarm (hint) */
};

/* What the cheap filter needs of a device's gas limits: HIGH raises above
 * the lower of high_limit/high_limit2, LOW below the higher of
 * low_limit/low_limit2 (NaN: not set), exactly as alarm_decide does. */
struct alarm_trig {
    double hi, lo;
};

/* Initialises both maps empty. Returns 0 or MCS_EIO (libsodium). */
int alarm_state_init(struct alarm_state *s);
/* Frees both maps (the state may be used again). NULL is a no-op. */
void alarm_state_cleanup(struct alarm_state *s);

/* Records the gas limits of sn (from the devices table): kept when any gas
 * limit is set, else sn is forgotten. Returns 0, MCS_EINVAL (bad sn) or
 * MCS_ENOMEM (the old entry is then forgotten too, so the filter errs on
 * nothing: the caller treats it as a failed load and reloads later). */
int alarm_state_set_limits(struct alarm_state *s, const char *sn, const struct alarm_limits *lim);
/* Forgets the gas limits of sn (device deleted or without limits). */
void alarm_state_forget_limits(struct alarm_state *s, const char *sn);
/* Forgets every device's gas limits (before a full reload); frees the map. */
void alarm_state_clear_limits(struct alarm_state *s);

/* The open-alarm hint of sn: the mask of types believed open (0: none). */
uint8_t alarm_state_open_mask(const struct alarm_state *s, const char *sn);
/* Sets the hint of sn; mask 0 removes the device. Returns 0, MCS_EINVAL or
 * MCS_ENOMEM. */
int alarm_state_set_open(struct alarm_state *s, const char *sn, uint8_t mask);
/* ORs type bits into the hint of sn. Returns as alarm_state_set_open. */
int alarm_state_add_open(struct alarm_state *s, const char *sn, uint8_t bits);
/* Forgets every hint (before re-reading the open alarms); frees the map. */
void alarm_state_clear_open(struct alarm_state *s);

/* 1 when a sample of sn needs the engine's decisions: sn has an open-alarm
 * hint, or the sample meets a condition of any type under sn's gas
 * triggers (same answer as alarm_any_condition with sn's full limits). */
int alarm_state_interesting(const struct alarm_state *s, const char *sn,
                            const struct alarm_sample *smp);

/* Devices with gas triggers, with open hints, and the bytes both maps hold. */
size_t alarm_state_ntrig(const struct alarm_state *s);
size_t alarm_state_nopen(const struct alarm_state *s);
size_t alarm_state_bytes(const struct alarm_state *s);

#endif

/* registry.h - the in-memory device registry of one mcsd process (R-MQ-7,
 * R-PR-2, R-PR-4): calibration and limits per SN, per-device live
 * statistics. Loaded from PostgreSQL, kept current by NOTIFY (registry thread).
 * Owns the device table and its lock. Does not talk to the network itself
 * except in registry_load()/registry_reload_one(), which take a connection.
 * Thread: any; every function takes the registry lock. */
#ifndef MCS_REGISTRY_H
#define MCS_REGISTRY_H

#include "calib.h"
#include "hmap.h"
#include "payload.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

struct mcs_device {
    char sn[MCS_SN_MAX + 1];
    uint8_t enabled;
    uint8_t deleted;   /* removed from the database: treated as unknown */
    uint8_t dirty;     /* statistics changed since the last flush */
    uint8_t online;    /* set by the store thread in journal order */
    uint8_t have_seq;
    uint16_t last_seq;
    int64_t last_ts;   /* device time of the latest live reading (ingest thread) */
    int16_t err;
    int32_t bat, rssi;
    char ver[17];
    struct mcs_calib calib;
    /* What makes a reading a gas alarm, for the alarm engine's filter
     * (alarm_state.h): the lower of high_limit/high_limit2 and the higher
     * of low_limit/low_limit2; NaN when neither is set. */
    double alarm_high, alarm_low;
    int64_t last_seen;            /* Unix seconds the newest stored reading was received */
    int64_t online_key_s;         /* when online:{sn} was last written (store thread) */
    int64_t rt_key_ms;            /* when realtime:{sn} was last written (store thread) */
    uint32_t recv_delta, lost_delta; /* since the last flush */
};

struct mcs_registry {
    pthread_mutex_t lock;
    struct mcs_device *dev; /* slots, never reused while the process runs */
    uint32_t n, cap;
    struct hmap index;      /* sn → slot (uint32_t) */
    uint32_t live;          /* registered and not deleted */
};

/* Outcome of registry_observe(). */
enum { MCS_REG_OK = 0, MCS_REG_UNKNOWN = 1, MCS_REG_DISABLED = 2, MCS_REG_RESENT = 3 };

int registry_init(struct mcs_registry *r);
void registry_cleanup(struct mcs_registry *r);

/* Inserts or replaces the configuration of one device (statistics kept);
 * high/low are its alarm_high/alarm_low. */
int registry_upsert(struct mcs_registry *r, const char *sn, const struct mcs_calib *c,
                    double high, double low, int enabled);
/* Marks a device deleted (unknown from now on). */
void registry_remove(struct mcs_registry *r, const char *sn);

/* Loads every device with a server-side cursor (bounded memory) and marks
 * devices missing from the table as deleted. Returns 0 or MCS_EDB. */
int registry_load(struct mcs_registry *r, PGconn *pg);
/* Re-reads one device after a NOTIFY. Returns 0 or MCS_EDB. */
int registry_reload_one(struct mcs_registry *r, PGconn *pg, const char *sn);

/* Ingest-thread entry: looks sn up; when known and enabled copies its
 * calibration to *c, and accounts seq for packet loss (R-PR-4: a forward gap
 * of g>1 adds g-1 lost; gaps of 32768 or more are resends and count nothing;
 * a repeated seq counts nothing) and the device's ver/err/bat/rssi.
 * Returns MCS_REG_OK, MCS_REG_UNKNOWN, MCS_REG_DISABLED, or MCS_REG_RESENT
 * (accepted; seq and time both behind the latest: a repeat or a cache
 * resend, see MCS_FLAG_RESENT; a seq behind with a newer time is a device
 * that restarted its count, and live). */
int registry_observe(struct mcs_registry *r, const struct mcs_reading *rd, struct mcs_calib *c);

/* Store-thread entry, in journal order (= receive order): a stored reading
 * (online, last_seen = its receive time in Unix s) or a status message.
 * The last live reading received is the newest (live = not
 * MCS_FLAG_RESENT; a resent one marks the device seen but not NEWEST): the
 * device's own clock decides nothing here (R-PR-3). registry_mark_seen
 * returns a mask of:
 *  MCS_SEEN_NEWEST  realtime:{sn} may show it now;
 *  MCS_SEEN_DEFER   realtime:{sn} was written less than rt_window_ms ago:
 *                   write it later (registry_rt_take);
 *  MCS_SEEN_ONLINE  online:{sn} should be (re)written now: the device was
 *                   offline, or the key was written refresh_s or more ago.
 * This bounds Redis writes per device however fast it reports. */
enum { MCS_SEEN_NEWEST = 1, MCS_SEEN_ONLINE = 2, MCS_SEEN_DEFER = 4 };
int registry_mark_seen(struct mcs_registry *r, const char *sn, int64_t recv_s, int64_t now_ms,
                       int refresh_s, int rt_window_ms, int live);

/* For a deferred realtime write: returns 1 (and records now_ms) when
 * realtime:{sn} was last written rt_window_ms or more ago, 0 otherwise. */
int registry_rt_take(struct mcs_registry *r, const char *sn, int64_t now_ms, int rt_window_ms);

void registry_mark_status(struct mcs_registry *r, const char *sn, int online);

/* Forgets when online:{sn} and realtime:{sn} were last written, so that the
 * next reading of every device writes them again (Redis restarted empty). */
void registry_forget_keys(struct mcs_registry *r);

/* Marks offline every online device not seen since `before` (Unix s).
 * Returns how many changed. */
int registry_expire(struct mcs_registry *r, int64_t before);

/* A snapshot of one dirty device for the statistics flush. */
struct mcs_device_stat {
    char sn[MCS_SN_MAX + 1];
    uint8_t online;
    int16_t err;
    int32_t bat, rssi;
    char ver[17];
    int64_t last_seen;
    uint32_t recv_delta, lost_delta;
};

/* Copies up to max dirty devices into out, clearing their dirty flag and
 * deltas. Returns the count. If the flush then fails, give them back with
 * registry_stats_restore(). */
uint32_t registry_take_dirty(struct mcs_registry *r, struct mcs_device_stat *out, uint32_t max);
void registry_stats_restore(struct mcs_registry *r, const struct mcs_device_stat *s, uint32_t n);

/* Number of registered (not deleted) devices. */
uint32_t registry_count(struct mcs_registry *r);

/* Notes sn's firmware version from its status message (the firmware sends
 * ver on connect and on change, not in every reading); written to
 * devices.fw_ver by the next statistics flush. 0 or MCS_ENOTFOUND. */
int registry_note_ver(struct mcs_registry *r, const char *sn, const char *ver);

/* Copies the calibration of sn into *c; returns 0 or MCS_ENOTFOUND. */
int registry_get_calib(struct mcs_registry *r, const char *sn, struct mcs_calib *c);

/* Copies alarm_high/alarm_low of sn (store thread: the alarm engine's
 * filter); returns 0 or MCS_ENOTFOUND (unknown or deleted: both NaN). */
int registry_get_alarm_limits(struct mcs_registry *r, const char *sn, double *high, double *low);

#endif

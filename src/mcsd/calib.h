/* calib.h - concentration from a raw reading (R-PR-1). Pure. Thread: any. */
#ifndef MCS_CALIB_H
#define MCS_CALIB_H

struct mcs_calib {
    double k, b, t_ref, t_comp;
    double range_max;
};

#define MCS_FLAG_OVER_RANGE 1
/* Set by ingest (registry_observe): the reading's seq and time are both
 * behind the device's latest — a resend of its offline cache. Stored, but
 * it never replaces the live value (realtime:{sn}). */
#define MCS_FLAG_RESENT 2

/* ppm = k·v_raw + b + t_comp·(temp − t_ref); temp NaN (not sent) means no
 * compensation. Below 0 → 0; above range_max → range_max with
 * MCS_FLAG_OVER_RANGE set in *flags. Returns ppm. */
double mcs_calib_ppm(const struct mcs_calib *c, double v_raw, double temp, int *flags);

#endif

/* payload.h - telemetry and status payloads (R-MQ-2, R-MQ-3): parsing and
 * validation of outside input into a reading, with one reason per rejection.
 * Owns the reject-reason table. Touches no shared state. Thread: any. */
#ifndef MCS_PAYLOAD_H
#define MCS_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* X(name) - every reason a message can be refused for; metrics field
 * rej_<name>. Order is the metrics order; append only. */
#define MCS_REJECTS(X)                                                  \
    X(too_large)                                                        \
    X(bad_json)                                                         \
    X(bad_topic)                                                        \
    X(missing_field)                                                    \
    X(bad_type)                                                         \
    X(out_of_range)                                                     \
    X(ts_future)                                                        \
    X(ts_past)                                                          \
    X(unknown_sn)                                                       \
    X(disabled)                                                         \
    X(spool_full)                                                       \
    X(spool_error)                                                      \
    X(trailing_data)                                                    \
    X(dup_key)

enum mcs_reject {
    MCS_REJ_NONE = -1,
#define MCS_REJ_ENUM(n) MCS_REJ_##n,
    MCS_REJECTS(MCS_REJ_ENUM)
#undef MCS_REJ_ENUM
    MCS_REJ_COUNT
};

/* Returns "too_large" etc.; "none" for MCS_REJ_NONE. */
const char *mcs_reject_name(int reason);

#define MCS_SN_MAX 32
#define MCS_ABSENT_INT INT32_MIN

/* One reading as accepted from a device. Optional numbers are NaN (doubles)
 * or MCS_ABSENT_INT (ints) when the device did not send them. */
struct mcs_reading {
    char sn[MCS_SN_MAX + 1];
    int64_t ts;        /* Unix seconds from the device */
    int32_t seq;       /* 0..65535 */
    double v_raw;      /* mV */
    double temp;       /* °C or NaN */
    double humi;       /* % or NaN */
    int32_t bat;       /* 0..100 or absent */
    int32_t rssi;      /* dBm or absent */
    int32_t err;       /* device error code, 0 when absent (R-MQ-5) */
    char ver[17];      /* firmware version or "" */
    char net[8];       /* 4G / WIFI / LORA or "" */
};

/* Bounds used for validation; from the configuration. */
struct mcs_payload_limits {
    int64_t now_s;          /* current time, Unix seconds */
    int64_t max_future_s;   /* ts > now + this → ts_future */
    int64_t max_past_s;     /* ts < now - this → ts_past */
};

/* Parses a telemetry payload (not NUL-terminated; len bytes) into *out.
 * Required: ts, seq, v_raw. Optional: temp, humi, bat, rssi, net, ver, err;
 * unknown keys are ignored. Returns MCS_REJ_NONE or the reason. out->sn is
 * not touched (it comes from the topic). Nesting deeper than 4 or any string
 * longer than 64 bytes is refused (out_of_range); anything but white space
 * after the object is trailing_data; a member name twice in one object is
 * dup_key (which of the two would count is a guess); a "\u0000" escape is
 * bad_json (cJSON would cut the string there). */
int mcs_payload_parse(const char *buf, size_t len, const struct mcs_payload_limits *lim,
                      struct mcs_reading *out);

/* A status message: the device's online state and, optionally, what the
 * firmware sends only on connect and on change (ver, net) and the result of
 * a command (id, cmd, result, reason). Absent strings are "". */
struct mcs_status {
    int online;
    int64_t ts;        /* Unix seconds from the device, 0 when absent */
    char ver[17];
    char net[8];
    char id[25];       /* the command's "id" as the server sent it */
    char cmd[17];      /* debug, calib, reboot, ota, set_rate, ? */
    char result[17];   /* ok, rejected, done, failed */
    char reason[33];   /* why, for rejected / failed */
};

/* Parses a status payload {"status":"online"|"offline","ts":N,...}, as
 * strictly as telemetry (the same string charset and bounds). Returns
 * MCS_REJ_NONE with *st filled, or the reason. */
int mcs_status_read(const char *buf, size_t len, struct mcs_status *st);

/* mcs_status_read for the online state and ts only. */
int mcs_status_parse(const char *buf, size_t len, int *online, int64_t *ts);

/* Splits "{prefix}/{sn}/{kind}". Writes sn (NUL-terminated) and returns 1 for
 * kind "up", 2 for "status", or 0 when the topic is not ours or the sn is
 * invalid (bad_topic). */
int mcs_topic_parse(const char *topic, const char *prefix, char sn[MCS_SN_MAX + 1]);

#endif

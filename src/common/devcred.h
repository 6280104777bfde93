/* devcred.h - device MQTT credentials (R-MQ-6): user `device_{sn}`, password
 * hex(SHA256(sn + vendor_secret))[:16]. Owns nothing. Thread: any. */
#ifndef MCS_DEVCRED_H
#define MCS_DEVCRED_H

#include <stddef.h>

/* Returns 1 when sn is a valid serial number: 1..32 of [A-Za-z0-9_-], and
 * not a reserved name (mcs_sn_reserved). */
int mcs_sn_valid(const char *sn, size_t len);

/* Returns 1 when sn (len bytes) is reserved: `broadcast`, whose command
 * topic {prefix}/broadcast/cmd is the whole fleet's (R-MQ-1). */
int mcs_sn_reserved(const char *sn, size_t len);

/* Writes the 16 hex-digit password plus NUL into out (size >= 17).
 * Returns 0, or MCS_EINVAL for an invalid sn. */
int mcs_device_password(const char *sn, const char *vendor_secret, char out[17]);

#endif

/* devcred.h - device MQTT credentials (R-MQ-6): user `device_{sn}`, password
 * hex(SHA256(sn + vendor_secret))[:16]. Owns nothing. Thread: any. */
#ifndef MCS_DEVCRED_H
#define MCS_DEVCRED_H

#include <stddef.h>

/* Returns 1 when sn is a valid serial number: 1..32 of [A-Za-z0-9_-]. */
int mcs_sn_valid(const char *sn, size_t len);

/* Writes the 16 hex-digit password plus NUL into out (size >= 17).
 * Returns 0, or MCS_EINVAL for an invalid sn. */
int mcs_device_password(const char *sn, const char *vendor_secret, char out[17]);

#endif

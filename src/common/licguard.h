/* licguard.h - the plant's license state (R-LI-4/5, issue #17), shared by
 * mcsd (stops storing telemetry when locked, runs the daily check) and
 * mcs-api (answers 403 when locked, installs a new license file).
 * Owns the reading of LICENSE_FILE and writing it on install. Every process
 * evaluates the file itself, so a new file takes effect without a restart.
 * Thread: any (no state of its own; the caller keeps the view). */
#ifndef MCS_LICGUARD_H
#define MCS_LICGUARD_H

#include "config.h"
#include "license.h"

#include <stdint.h>

/* valid: running. grace: running, the online check is overdue (yellow).
 * locked / missing: telemetry is not stored and the API refuses all but the
 * calls named in docs/API.md; gas alarms are still evaluated and notified. */
#define LIC_STATES(X)                                                  \
    X(LIC_ST_VALID, "valid")                                           \
    X(LIC_ST_GRACE, "grace")                                           \
    X(LIC_ST_LOCKED, "locked")                                         \
    X(LIC_ST_MISSING, "missing")

enum lic_state {
#define LIC_ST_ENUM(e, name) e,
    LIC_STATES(LIC_ST_ENUM)
#undef LIC_ST_ENUM
};

/* API business codes of manual §10.5. */
enum { LIC_CODE_INVALID = 20001, LIC_CODE_EXPIRED = 20002, LIC_CODE_DEVICES = 20003,
       LIC_CODE_HOST = 20004 };

struct lic_view {
    enum lic_state state;
    int code;           /* 0 when running, else the code a refused call gets */
    char reason[320];   /* Chinese / English, never the license key */
    int have_license;   /* lic holds a verified license (possibly expired) */
    struct mcs_license lic;
    int64_t evaluated;  /* unix seconds of this evaluation */
};

/* 1 when the state lets the plant store telemetry and serve the API. */
static inline int licguard_running(const struct lic_view *v)
{
    return v->state == LIC_ST_VALID || v->state == LIC_ST_GRACE;
}

/* Evaluates the license at unix time now into v (always filled). */
void licguard_eval(const struct mcs_config *cfg, int64_t now, struct lic_view *v);

/* Installs a new license: verifies buf (n bytes) with the built-in keys,
 * refuses an expired one, then replaces LICENSE_FILE atomically (temporary
 * file, fsync, rename, directory fsync). Returns 0, MCS_EPARSE/MCS_ETOOBIG
 * (malformed), MCS_ECORRUPT (signature, 20001), MCS_EINVAL (expired, 20002),
 * MCS_EIO (cannot write). why gets the message. */
int licguard_install(const struct mcs_config *cfg, const char *buf, size_t n, int64_t now,
                     char *why, size_t whyn);

const char *licguard_state_name(enum lic_state s);

#endif

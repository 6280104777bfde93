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

/* Grace rules (R-LI-4). A good check makes the plant valid for a token's
 * 24 h (+1 h for the 03:00 job's own run time); after that, or when a check
 * failed, it runs in grace (yellow) until 72 h after the last good check;
 * then it locks. A new plant has its 72 h from the first evaluation. */
#define LIC_VALID_S (25 * 3600)
#define LIC_GRACE_S (72 * 3600)
#define LIC_WARN_S (24 * 3600)     /* less grace than this: warning alarm */
#define LIC_CLOCK_TOLERANCE_S 300  /* a clock behind the high-water mark by more: turned back */

/* What the checks have seen, kept in license.state beside LICENSE_FILE with
 * a keyed MAC (an edited file counts as no good check at all). Written only
 * under licguard_state_update's lock. Times are unix seconds, 0 = never. */
struct lic_record {
    char license_id[LIC_VALUE_MAX + 1]; /* the license these facts are about */
    int64_t first_seen;
    int64_t last_good;                  /* the last check with a valid ok token */
    int64_t hwm;                        /* high-water mark of time seen */
    int64_t last_fail;
    char rejected[16];                  /* a signed verdict other than ok, or "" */
    char fail_reason[200];
};

struct lic_view {
    enum lic_state state;
    int code;           /* 0 when running, else the code a refused call gets */
    char reason[400];   /* Chinese / English, never the license key */
    int have_license;   /* lic holds a verified license (possibly expired) */
    struct mcs_license lic;
    int64_t evaluated;  /* unix seconds of this evaluation (licguard_now) */
    struct lic_record rec;
    int tampered;       /* license.state failed its MAC */
    int64_t grace_left; /* seconds until the lock, when state is grace */
    int clock_back;     /* the clock is behind the high-water mark */
};

/* Wall clock for the license in unix seconds. In test builds only
 * (MCS_LICENSE_TEST) the file named by MCS_TEST_CLOCK_FILE holds an offset
 * in seconds added to it; production builds ignore that variable. */
int64_t licguard_now(void);

/* Paths beside LICENSE_FILE: "license.state", "token.json". */
void licguard_path(const struct mcs_config *cfg, const char *name, char *out, size_t outn);

/* Reads license.state into r (zeroed first). Returns 0, MCS_ENOTFOUND, or
 * MCS_ECORRUPT (bad MAC or form: r stays zeroed). */
int licguard_state_load(const struct mcs_config *cfg, struct lic_record *r);
/* Load, fn(r, loaded, arg), save, under an exclusive lock of license.lock,
 * so mcsd's watch, its checks and `mcs job run license` never lose each
 * other's facts. loaded is licguard_state_load's result. fn returns 0 to
 * save, anything else to leave the file. Returns 0, fn's value, or MCS_EIO. */
int licguard_state_update(const struct mcs_config *cfg,
                          int (*fn)(struct lic_record *r, int loaded, void *arg), void *arg);
/* Makes r the record of license_id when it is about another one: fresh
 * grace from now for a new plant, none (first_seen 1) when the record was
 * altered or deleted while a token shows an earlier check. */
void licguard_record_for(const struct mcs_config *cfg, struct lic_record *r, int loaded,
                         const char *license_id, int64_t now);

/* 1 when the state lets the plant store telemetry and serve the API. */
static inline int licguard_running(const struct lic_view *v)
{
    return v->state == LIC_ST_VALID || v->state == LIC_ST_GRACE;
}

/* Evaluates the license at unix time now (licguard_now) into v (always
 * filled): the file, then the facts of license.state. */
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

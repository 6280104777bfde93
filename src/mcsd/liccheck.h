/* liccheck.h - the plant's online license check (R-LI-3/4, issue #17):
 * POST LICENSE_SERVER_URL {machine_id (fingerprint), license_key, version,
 * nonce}, verify the signed token (vendor key, license, host, nonce, the
 * server's time), record the outcome in license.state, keep the token in
 * token.json and Redis license:token (TTL 24 h).
 * Owns one curl handle per call. Thread: any (mcsd's check thread, the
 * scheduler's license job, `mcs job run license`). */
#ifndef MCS_LICCHECK_H
#define MCS_LICCHECK_H

#include "config.h"

#include <stdatomic.h>
#include <stddef.h>

enum liccheck_outcome {
    LICCHECK_OK,         /* a valid ok token: the plant is valid for 24 h */
    LICCHECK_REJECTED,   /* a signed rejection: locked at once */
    LICCHECK_FAILED,     /* unreachable, forged, replayed, clock: grace runs on */
    LICCHECK_NO_LICENSE, /* no usable license file: nothing was asked */
};

/* Runs one check at licguard_now(). stop (may be NULL) aborts the request.
 * msg gets one line (Chinese / English) for logs and job_runs; never the
 * license key or the raw machine id. */
enum liccheck_outcome liccheck_run(const struct mcs_config *cfg, const _Atomic int *stop,
                                   char *msg, size_t msgn);

#endif

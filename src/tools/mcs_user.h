/* mcs_user.h - `mcs user add|list|passwd|del`: the accounts of mcs-api
 * (R-API-1). Passwords are read from stdin (one line) and stored as
 * Argon2id hashes. Thread: single-threaded CLI. */
#ifndef MCS_USER_H
#define MCS_USER_H

#include "config.h"

/* argv[0] is "user". Returns 0 or a negative MCS_E code (MCS_EINVAL for
 * usage errors); messages go to stderr. */
int mcs_user_run(const struct mcs_config *cfg, int argc, char **argv);

#endif

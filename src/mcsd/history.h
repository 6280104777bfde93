/* history.h - one history across hot and cold data (issue #10, beyond the
 * seed). Thread: the caller's. */
#ifndef MCS_HISTORY_H
#define MCS_HISTORY_H

#include "config.h"

/* `mcs history SN START END`: CSV on stdout. Returns 0 or an MCS_E code. */
int history_cli(const struct mcs_config *cfg, const char *sn, const char *start,
                const char *end);

#endif

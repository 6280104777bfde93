/* mcs_alarm.h - entry of the alarm commands of `mcs` (issue #7): `mcs config
 * alarm ...` and `mcs alarm ...` (see mcs_alarm.c). Thread: single. */
#ifndef MCS_ALARM_CLI_H
#define MCS_ALARM_CLI_H

#include "config.h"

/* argv[1] is "alarm", or "config" with argv[2] "alarm". Returns 0 or a
 * negative MCS_E code (MCS_EINVAL/MCS_ECONFIG: usage), message printed. */
int mcs_alarm_run(const struct mcs_config *cfg, int argc, char **argv);

#endif

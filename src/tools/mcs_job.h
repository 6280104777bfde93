/* mcs_job.h - the `mcs job|backup|archive|history` commands (issue #10),
 * kept apart from mcs.c. Thread: main. */
#ifndef MCS_JOB_CLI_H
#define MCS_JOB_CLI_H

#include "config.h"

/* True when argv1 names one of these commands. */
int mcs_job_cli_handles(const char *argv1);

/* Runs the command; prints results on stdout and problems on stderr.
 * Returns 0, MCS_EINVAL (usage) or another negative MCS_E code. */
int mcs_job_cli(const struct mcs_config *cfg, int argc, char **argv);

#endif

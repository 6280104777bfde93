/* history.c - placeholder until the hot/cold history reader lands. */
#include "history.h"
#include "err.h"

#include <stdio.h>

int history_cli(const struct mcs_config *cfg, const char *sn, const char *start,
                const char *end)
{
    (void)cfg;
    (void)sn;
    (void)start;
    (void)end;
    fprintf(stderr, "mcs: history is not built yet\n");
    return MCS_EIO;
}

/* numparse.c - strtol/strtod with every check in one place. Owns nothing.
 * Thread: any. */
#include "numparse.h"
#include "err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int mcs_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if(errno || end == s || *end != '\0' || v < lo || v > hi)
        return MCS_EINVAL;
    *out = v;
    return 0;
}

int mcs_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if(errno || end == s || *end != '\0' || !isfinite(v) || !(v >= lo && v <= hi))
        return MCS_EINVAL;
    *out = v;
    return 0;
}

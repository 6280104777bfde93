/* calib.c - the conversion formula of R-PR-1. Pure. Thread: any. */
#include "calib.h"

#include <math.h>

double mcs_calib_ppm(const struct mcs_calib *c, double v_raw, double temp, int *flags)
{
    double ppm = c->k * v_raw + c->b;
    *flags = 0;
    if(!isnan(temp))
        ppm += c->t_comp * (temp - c->t_ref);
    if(!isfinite(ppm) || ppm > c->range_max) {
        /* Infinite results can only come from absurd parameters: treat them as
         * over range rather than store a value no screen can show. */
        *flags |= MCS_FLAG_OVER_RANGE;
        return c->range_max;
    }
    if(ppm < 0)
        return 0;
    /* Round to 1e-6 so that 3516.1000000000004 is stored as 3516.1. */
    return round(ppm * 1e6) / 1e6;
}

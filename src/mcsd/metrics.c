/* metrics.c - counters and a fixed-width latency histogram.
 * Owns struct mcs_metrics' contents. Thread: see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <string.h>

void metrics_init(struct mcs_metrics *m)
{
    memset(m, 0, sizeof(*m));
    atomic_store(&m->broker_dropped, -1);
    atomic_store(&m->broker_clients, -1);
}

void metrics_reject(struct mcs_metrics *m, int reason)
{
    atomic_fetch_add_explicit(&m->rejected, 1, memory_order_relaxed);
    if(reason >= 0 && reason < MCS_REJ_COUNT)
        atomic_fetch_add_explicit(&m->rej[reason], 1, memory_order_relaxed);
}

/* Upper edge of bucket b in microseconds. */
static double bucket_edge_us(int b)
{
    if(b < MCS_LAT_LINEAR)
        return (double)(b + 1) * MCS_LAT_STEP_US;
    return (double)MCS_LAT_LINEAR * MCS_LAT_STEP_US * pow(1.01, b - MCS_LAT_LINEAR + 1);
}

void metrics_latency(struct mcs_metrics *m, int64_t us)
{
    int64_t b;
    if(us < 0)
        us = 0; /* clocks of publisher and mcsd differ slightly */
    b = us / MCS_LAT_STEP_US;
    if(b >= MCS_LAT_LINEAR) {
        b = MCS_LAT_LINEAR +
            (int64_t)floor(log((double)us / ((double)MCS_LAT_LINEAR * MCS_LAT_STEP_US)) / log(1.01));
        if(b >= MCS_LAT_BUCKETS)
            b = MCS_LAT_BUCKETS;
    }
    if(b == MCS_LAT_BUCKETS && (uint64_t)us > m->lat_over_max_us)
        m->lat_over_max_us = (uint64_t)us;
    m->lat[b]++;
    m->lat_count++;
}

double metrics_latency_pct(const struct mcs_metrics *m, double p)
{
    if(!m->lat_count)
        return 0;
    uint64_t want = (uint64_t)((double)m->lat_count * p / 100.0);
    if(want >= m->lat_count)
        want = m->lat_count - 1;
    uint64_t seen = 0;
    for(int i = 0; i <= MCS_LAT_BUCKETS; i++) {
        seen += m->lat[i];
        if(seen > want) {
            if(i == MCS_LAT_BUCKETS)
                return (double)m->lat_over_max_us / 1000.0;
            /* Upper edge of the bucket: never report better than measured. */
            return bucket_edge_us(i) / 1000.0;
        }
    }
    return 0;
}

/* test_metrics.c - latency percentiles from the histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "metrics.h"

#include <stdlib.h>

static void percentiles(void **state)
{
    struct mcs_metrics *m = calloc(1, sizeof(*m));
    (void)state;
    metrics_init(m);
    assert_true(metrics_latency_pct(m, 50) == 0);
    for(int i = 1; i <= 1000; i++)
        metrics_latency(m, i * 1000); /* 1..1000 ms */
    double p50 = metrics_latency_pct(m, 50), p99 = metrics_latency_pct(m, 99);
    assert_true(p50 >= 500 && p50 <= 501.5);
    assert_true(p99 >= 990 && p99 <= 991.5);
    /* Seconds-long queueing is measured, not capped at the linear range. */
    for(int i = 0; i < 100000; i++)
        metrics_latency(m, 5000000); /* 5 s */
    p50 = metrics_latency_pct(m, 50);
    assert_true(p50 >= 5000 && p50 <= 5000 * 1.011);
    metrics_latency(m, -5); /* clock skew: counted as 0 */
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(percentiles)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

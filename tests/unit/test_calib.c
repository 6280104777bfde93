/* test_calib.c - the R-PR-1 formula, its worked example and clamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "calib.h"

#include <math.h>

static void worked_example(void **state)
{
    struct mcs_calib c = {1.5, -10, 25, 0.1, 50000};
    int flags = -1;
    (void)state;
    double ppm = mcs_calib_ppm(&c, 2350.5, 28.5, &flags);
    assert_true(fabs(ppm - 3516.1) < 1e-9);
    assert_int_equal(flags, 0);
}

static void clamps(void **state)
{
    struct mcs_calib c = {1.5, -10, 25, 0.1, 1000};
    int flags = -1;
    (void)state;
    assert_true(mcs_calib_ppm(&c, -500, 25, &flags) == 0.0);
    assert_int_equal(flags, 0);
    assert_true(mcs_calib_ppm(&c, 5000, 25, &flags) == 1000.0);
    assert_int_equal(flags, MCS_FLAG_OVER_RANGE);
    /* exactly at range max is not over range */
    assert_true(mcs_calib_ppm(&c, (1000 + 10) / 1.5, 25, &flags) <= 1000.0);
    assert_int_equal(flags, 0);
}

static void no_temperature(void **state)
{
    struct mcs_calib c = {2, 1, 25, 10, 50000};
    int flags;
    (void)state;
    assert_true(fabs(mcs_calib_ppm(&c, 100, NAN, &flags) - 201) < 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(worked_example), cmocka_unit_test(clamps),
                                       cmocka_unit_test(no_temperature)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

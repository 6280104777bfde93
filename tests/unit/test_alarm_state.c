/* test_alarm_state.c - what the alarm engine keeps of devices between
 * batches (src/mcsd/alarm_state.c, issue #2 rss_mb_100k): nothing for
 * devices without open alarms, however many report; the registry's two
 * alarm limits per device give the same filter answer as the full limits;
 * open-alarm hints come and go with the alarms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alarm.h"
#include "alarm_state.h"
#include "err.h"
#include "registry.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define FLEET 100000

static struct alarm_sample rd(double ppm)
{
    struct alarm_sample s = {0, 1, ppm, 0, 0, INT32_MIN};
    return s;
}

/* 100,000 registered devices with limits, all reporting normal readings:
 * the engine's state stays empty; the registry answers the filter. */
static void fleet_without_alarms_costs_nothing(void **state)
{
    struct alarm_state st;
    struct mcs_registry reg;
    struct mcs_calib c = {1, 0, 25, 0, 50000};
    struct alarm_sample ok = rd(12), hi = rd(150), lowbat = rd(12);
    char sn[16];
    double high, low;
    (void)state;

    lowbat.bat = 5;
    assert_int_equal(registry_init(&reg), 0);
    assert_int_equal(alarm_state_init(&st), 0);
    for(int i = 0; i < FLEET; i++) {
        snprintf(sn, sizeof(sn), "F%06d", i);
        assert_int_equal(registry_upsert(&reg, sn, &c, 100, 10, 1), 0);
    }
    for(int i = 0; i < FLEET; i++) {
        snprintf(sn, sizeof(sn), "F%06d", i);
        assert_int_equal(registry_get_alarm_limits(&reg, sn, &high, &low), 0);
        assert_false(alarm_state_interesting(&st, sn, high, low, &ok));
        assert_int_equal(alarm_state_open_mask(&st, sn), 0);
        /* What a decided batch writes back for a device whose alarms are
         * all clear. */
        assert_int_equal(alarm_state_set_open(&st, sn, 0), 0);
    }
    assert_int_equal(registry_get_alarm_limits(&reg, "F000042", &high, &low), 0);
    assert_true(alarm_state_interesting(&st, "F000042", high, low, &hi));
    assert_true(alarm_state_interesting(&st, "F000042", high, low, &lowbat));
    assert_int_equal(alarm_state_nopen(&st), 0);
    assert_int_equal(alarm_state_bytes(&st), 0);
    /* Unknown or deleted: no limits, only the non-gas conditions. */
    registry_remove(&reg, "F000042");
    assert_int_equal(registry_get_alarm_limits(&reg, "F000042", &high, &low), MCS_ENOTFOUND);
    assert_true(isnan(high) && isnan(low));
    assert_false(alarm_state_interesting(&st, "F000042", high, low, &hi));
    assert_true(alarm_state_interesting(&st, "F000042", high, low, &lowbat));
    alarm_state_cleanup(&st);
    registry_cleanup(&reg);
}

/* The two triggers answer exactly as alarm_any_condition with the full
 * limits, for every combination of set and unset limits. */
static void triggers_match_full_limits(void **state)
{
    const double L[] = {NAN, 10, 19.5, 50, 100, 200};
    const double V[] = {NAN, -5, 0, 9.9, 10, 10.1, 18, 19.5, 19.6, 49, 50, 51,
                        99.9, 100, 100.1, 150, 199, 200, 250};
    const size_t nl = sizeof(L) / sizeof(L[0]), nv = sizeof(V) / sizeof(V[0]);
    struct alarm_state st;
    long checked = 0;
    (void)state;

    assert_int_equal(alarm_state_init(&st), 0);
    for(size_t a = 0; a < nl; a++)
        for(size_t b = 0; b < nl; b++)
            for(size_t c = 0; c < nl; c++)
                for(size_t d = 0; d < nl; d++) {
                    struct alarm_limits lim = {L[a], L[b], L[c], L[d], 1, 50000};
                    double high, low;
                    alarm_state_triggers(&lim, &high, &low);
                    for(size_t i = 0; i < nv; i++) {
                        struct alarm_sample s = rd(V[i]);
                        assert_int_equal(alarm_state_interesting(&st, "P1", high, low, &s),
                                         alarm_any_condition(&lim, &s));
                        checked++;
                    }
                }
    assert_true(checked > 20000);
    alarm_state_cleanup(&st);
}

static void open_hints_come_and_go(void **state)
{
    struct alarm_state st;
    struct alarm_sample ok = rd(5);
    (void)state;

    assert_int_equal(alarm_state_init(&st), 0);
    assert_false(alarm_state_interesting(&st, "H1", 100, NAN, &ok));
    assert_int_equal(alarm_state_add_open(&st, "H1", 1u << AL_HIGH), 0);
    assert_int_equal(alarm_state_add_open(&st, "H1", 1u << AL_LOW_BAT), 0);
    assert_int_equal(alarm_state_open_mask(&st, "H1"), (1u << AL_HIGH) | (1u << AL_LOW_BAT));
    /* An open alarm makes every reading of the device interesting (it may
     * clear it), whatever its limits. */
    assert_true(alarm_state_interesting(&st, "H1", 100, NAN, &ok));
    assert_int_equal(alarm_state_nopen(&st), 1);
    assert_int_equal(alarm_state_set_open(&st, "H1", 0), 0);
    assert_int_equal(alarm_state_nopen(&st), 0);
    assert_false(alarm_state_interesting(&st, "H1", 100, NAN, &ok));
    assert_int_equal(alarm_state_set_open(&st, "H2", 1u << AL_OFFLINE), 0);
    assert_int_equal(alarm_state_set_open(&st, "", 1), MCS_EINVAL);
    alarm_state_clear_open(&st);
    assert_int_equal(alarm_state_nopen(&st), 0);
    assert_int_equal(alarm_state_bytes(&st), 0);
    alarm_state_cleanup(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fleet_without_alarms_costs_nothing),
        cmocka_unit_test(triggers_match_full_limits),
        cmocka_unit_test(open_hints_come_and_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

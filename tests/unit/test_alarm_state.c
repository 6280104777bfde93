/* test_alarm_state.c - what the alarm engine keeps of devices between
 * batches (src/mcsd/alarm_state.c, issue #2 rss_mb_100k): nothing for
 * devices without gas limits or open alarms, however many report; the gas
 * triggers give the same filter answer as the full limits; open-alarm
 * hints come and go with the alarms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alarm.h"
#include "alarm_state.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define FLEET 100000

static struct alarm_sample rd(double ppm)
{
    struct alarm_sample s = {0, 1, ppm, 0, 0, INT32_MIN};
    return s;
}

static void fleet_without_alarms_costs_nothing(void **state)
{
    struct alarm_state st;
    struct alarm_limits none = {NAN, NAN, NAN, NAN, 2.5, 50000};
    struct alarm_sample ok = rd(12), lowbat = rd(12);
    char sn[16];
    (void)state;

    lowbat.bat = 5;
    assert_int_equal(alarm_state_init(&st), 0);
    for(int i = 0; i < FLEET; i++) {
        snprintf(sn, sizeof(sn), "F%06d", i);
        /* Every device read from the table and reporting: no gas limit,
         * no alarm, nothing kept. */
        assert_int_equal(alarm_state_set_limits(&st, sn, &none), 0);
        assert_false(alarm_state_interesting(&st, sn, &ok));
        assert_int_equal(alarm_state_open_mask(&st, sn), 0);
        assert_int_equal(alarm_state_set_open(&st, sn, 0), 0);
    }
    /* A fault condition is still found without any state of the device. */
    assert_true(alarm_state_interesting(&st, "F000042", &lowbat));
    assert_int_equal(alarm_state_ntrig(&st), 0);
    assert_int_equal(alarm_state_nopen(&st), 0);
    assert_int_equal(alarm_state_bytes(&st), 0);
    alarm_state_cleanup(&st);
}

static void fleet_with_limits_is_compact(void **state)
{
    struct alarm_state st;
    struct alarm_limits lim = {100, 200, NAN, NAN, NAN, 50000};
    char sn[16];
    (void)state;

    assert_int_equal(alarm_state_init(&st), 0);
    for(int i = 0; i < FLEET; i++) {
        snprintf(sn, sizeof(sn), "L%06d", i);
        assert_int_equal(alarm_state_set_limits(&st, sn, &lim), 0);
    }
    assert_int_equal(alarm_state_ntrig(&st), FLEET);
    /* One map slot per device at most 70 % full: 16 MB for 100,000, not the
     * ~50 MB the per-device engine state cost before. */
    assert_true(alarm_state_bytes(&st) <= (size_t)17 * 1024 * 1024);
    struct alarm_sample hi = rd(150), ok = rd(50);
    assert_true(alarm_state_interesting(&st, "L012345", &hi));
    assert_false(alarm_state_interesting(&st, "L012345", &ok));
    /* Limits removed in the table: the device is forgotten again. */
    struct alarm_limits none = {NAN, NAN, NAN, NAN, NAN, 50000};
    assert_int_equal(alarm_state_set_limits(&st, "L012345", &none), 0);
    assert_false(alarm_state_interesting(&st, "L012345", &hi));
    alarm_state_forget_limits(&st, "L000001");
    assert_int_equal(alarm_state_ntrig(&st), FLEET - 2);
    alarm_state_clear_limits(&st);
    assert_int_equal(alarm_state_ntrig(&st), 0);
    assert_int_equal(alarm_state_bytes(&st), 0);
    alarm_state_cleanup(&st);
}

/* The triggers answer exactly as alarm_any_condition with the full limits. */
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
                    assert_int_equal(alarm_state_set_limits(&st, "P1", &lim), 0);
                    for(size_t i = 0; i < nv; i++) {
                        struct alarm_sample s = rd(V[i]);
                        assert_int_equal(alarm_state_interesting(&st, "P1", &s),
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
    assert_false(alarm_state_interesting(&st, "H1", &ok));
    assert_int_equal(alarm_state_add_open(&st, "H1", 1u << AL_HIGH), 0);
    assert_int_equal(alarm_state_add_open(&st, "H1", 1u << AL_LOW_BAT), 0);
    assert_int_equal(alarm_state_open_mask(&st, "H1"), (1u << AL_HIGH) | (1u << AL_LOW_BAT));
    /* An open alarm makes every reading of the device interesting (it may
     * clear it), whatever its limits. */
    assert_true(alarm_state_interesting(&st, "H1", &ok));
    assert_int_equal(alarm_state_nopen(&st), 1);
    assert_int_equal(alarm_state_set_open(&st, "H1", 0), 0);
    assert_int_equal(alarm_state_nopen(&st), 0);
    assert_false(alarm_state_interesting(&st, "H1", &ok));
    assert_int_equal(alarm_state_set_open(&st, "H2", 1u << AL_OFFLINE), 0);
    alarm_state_clear_open(&st);
    assert_int_equal(alarm_state_nopen(&st), 0);
    assert_int_equal(alarm_state_bytes(&st), 0);
    alarm_state_cleanup(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fleet_without_alarms_costs_nothing),
        cmocka_unit_test(fleet_with_limits_is_compact),
        cmocka_unit_test(triggers_match_full_limits),
        cmocka_unit_test(open_hints_come_and_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

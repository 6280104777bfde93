/* test_alarm.c - the pure alarm rules of src/mcsd/alarm.c: conditions of
 * every type and both levels, the lifecycle with hysteresis, level 1→2,
 * debounce, reminders, schedule (days, across midnight, time zone offset,
 * level-2 override) and escalation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alarm.h"
#include "alarm_db.h"

#include <math.h>
#include <stdint.h>

static const struct alarm_limits LIM = {100, 200, 19.5, 18, NAN, 50000};

static struct alarm_sample rd(double ppm)
{
    struct alarm_sample s = {0, 1, ppm, 0, 0, INT32_MIN};
    return s;
}

/* Feeds a sequence of readings for one type; returns the actions. */
static void run(int type, const struct alarm_limits *lim, const double *v, int n, int *acts)
{
    struct alarm_open st = {0, 0, NAN};
    for(int i = 0; i < n; i++) {
        struct alarm_sample s = rd(v[i]);
        struct alarm_decision d;
        alarm_decide(type, lim, 2, &st, &s, &d);
        alarm_apply(type, &st, &d);
        acts[i] = d.action;
    }
}

static void high_two_levels(void **state)
{
    struct alarm_open st = {0, 0, NAN};
    struct alarm_decision d;
    struct alarm_sample s = rd(150);
    (void)state;
    alarm_decide(AL_HIGH, &LIM, 2, &st, &s, &d);
    assert_int_equal(d.action, AL_ACT_RAISE);
    assert_int_equal(d.level, 1);
    assert_true(d.threshold == 100);
    alarm_apply(AL_HIGH, &st, &d);
    s = rd(250);
    alarm_decide(AL_HIGH, &LIM, 2, &st, &s, &d);
    assert_int_equal(d.action, AL_ACT_LEVEL2);
    assert_int_equal(d.level, 2);
    assert_true(d.threshold == 200);
    alarm_apply(AL_HIGH, &st, &d);
    assert_true(st.peak == 250);
    /* back between the limits: still open, stays level 2, peak kept */
    s = rd(120);
    alarm_decide(AL_HIGH, &LIM, 2, &st, &s, &d);
    assert_int_equal(d.action, AL_ACT_UPDATE);
    assert_int_equal(d.level, 2);
    alarm_apply(AL_HIGH, &st, &d);
    assert_true(st.peak == 250);
    /* a raise straight at level 2 */
    struct alarm_open st2 = {0, 0, NAN};
    s = rd(500);
    alarm_decide(AL_HIGH, &LIM, 2, &st2, &s, &d);
    assert_int_equal(d.action, AL_ACT_RAISE);
    assert_int_equal(d.level, 2);
}

static void hysteresis_no_flap(void **state)
{
    /* 99-100-101-99-100-99-97: limit 100, band 2 % = 2 → clears at <= 98 */
    const double v[] = {99, 100, 101, 99, 100, 101, 99, 97};
    const int want[] = {AL_ACT_NONE, AL_ACT_NONE, AL_ACT_RAISE, AL_ACT_NONE,
                        AL_ACT_NONE, AL_ACT_UPDATE, AL_ACT_NONE, AL_ACT_CLEAR};
    int acts[8];
    (void)state;
    run(AL_HIGH, &LIM, v, 8, acts);
    for(int i = 0; i < 8; i++)
        assert_int_equal(acts[i], want[i]);
    /* device hysteresis overrides the percentage */
    struct alarm_limits l = LIM;
    l.hysteresis = 10;
    const double v2[] = {101, 95, 90};
    const int want2[] = {AL_ACT_RAISE, AL_ACT_NONE, AL_ACT_CLEAR};
    run(AL_HIGH, &l, v2, 3, acts);
    for(int i = 0; i < 3; i++)
        assert_int_equal(acts[i], want2[i]);
}

static void low_oxygen(void **state)
{
    const double v[] = {20.9, 19.0, 17.5, 19.6, 19.9, 20.0};
    /* band 2 % of 19.5 = 0.39 → clears at >= 19.89 */
    const int want[] = {AL_ACT_NONE, AL_ACT_RAISE, AL_ACT_LEVEL2, AL_ACT_NONE,
                        AL_ACT_CLEAR, AL_ACT_NONE};
    int acts[6];
    (void)state;
    run(AL_LOW, &LIM, v, 6, acts);
    for(int i = 0; i < 6; i++)
        assert_int_equal(acts[i], want[i]);
    /* no low limit: never LOW */
    struct alarm_limits l = {100, NAN, NAN, NAN, NAN, 50000};
    const double z[] = {0, 0};
    run(AL_LOW, &l, z, 2, acts);
    assert_int_equal(acts[0], AL_ACT_NONE);
}

static void fault_types(void **state)
{
    struct alarm_open st = {0, 0, NAN};
    struct alarm_decision d;
    struct alarm_sample s = rd(10);
    (void)state;
    s.err = 10;
    alarm_decide(AL_LOW_BAT, &LIM, 2, &st, &s, &d);
    assert_int_equal(d.action, AL_ACT_RAISE);
    alarm_apply(AL_LOW_BAT, &st, &d);
    s.err = 0;
    s.bat = 22; /* inside the band: not cleared */
    alarm_decide(AL_LOW_BAT, &LIM, 2, &st, &s, &d);
    assert_int_equal(d.action, AL_ACT_NONE);
    s.bat = 30;
    alarm_decide(AL_LOW_BAT, &LIM, 2, &st, &s, &d);
    assert_int_equal(d.action, AL_ACT_CLEAR);
    struct alarm_open st2 = {0, 0, NAN};
    s = rd(10);
    s.bat = 15;
    alarm_decide(AL_LOW_BAT, &LIM, 2, &st2, &s, &d);
    assert_int_equal(d.action, AL_ACT_RAISE);

    /* DEVICE: err 1, 2 raise; 3 (temperature sensor) does not */
    for(int e = 0; e <= 50; e++) {
        struct alarm_open o = {0, 0, NAN};
        s = rd(10);
        s.err = e;
        alarm_decide(AL_DEVICE, &LIM, 2, &o, &s, &d);
        assert_int_equal(d.action == AL_ACT_RAISE, e == 1 || e == 2);
    }
    /* OVER_RANGE is level 2 */
    struct alarm_open o = {0, 0, NAN};
    s = rd(50000);
    s.over_range = 1;
    alarm_decide(AL_OVER_RANGE, &LIM, 2, &o, &s, &d);
    assert_int_equal(d.action, AL_ACT_RAISE);
    assert_int_equal(d.level, 2);
    assert_true(alarm_any_condition(&LIM, &s));
    s = rd(50);
    assert_false(alarm_any_condition(&LIM, &s));
}

static void offline(void **state)
{
    struct alarm_open st = {0, 0, NAN};
    struct alarm_decision d;
    struct alarm_sample will = {1, 0, NAN, 0, 0, INT32_MIN};
    struct alarm_sample back = rd(10);
    (void)state;
    alarm_decide(AL_OFFLINE, &LIM, 2, &st, &will, &d);
    assert_int_equal(d.action, AL_ACT_RAISE);
    alarm_apply(AL_OFFLINE, &st, &d);
    /* a Last Will is not a HIGH reading */
    struct alarm_open h = {0, 0, NAN};
    alarm_decide(AL_HIGH, &LIM, 2, &h, &will, &d);
    assert_int_equal(d.action, AL_ACT_NONE);
    alarm_decide(AL_OFFLINE, &LIM, 2, &st, &will, &d);
    assert_int_equal(d.action, AL_ACT_UPDATE);
    alarm_decide(AL_OFFLINE, &LIM, 2, &st, &back, &d);
    assert_int_equal(d.action, AL_ACT_CLEAR);
    assert_int_equal(alarm_type_category(AL_OFFLINE), AL_CAT_FAULT);
    assert_int_equal(alarm_type_category(AL_HIGH), AL_CAT_GAS);
    assert_int_equal(alarm_type_parse("LOW_BAT"), AL_LOW_BAT);
    assert_int_equal(alarm_type_parse("nope"), -1);
}

static void debounce_and_reminders(void **state)
{
    const int64_t W = 600000;
    (void)state;
    assert_true(alarm_debounce_ok(0, 1000, W, 0));
    assert_false(alarm_debounce_ok(1000, 1000 + W - 1, W, 0));
    assert_true(alarm_debounce_ok(1000, 1000 + W, W, 0));
    assert_true(alarm_debounce_ok(1000, 1001, W, 1)); /* level 2 at once */
    assert_false(alarm_reminder_due(1, 0, 1000, 1000 + W - 1, W));
    assert_true(alarm_reminder_due(1, 0, 1000, 1000 + W, W));
    assert_false(alarm_reminder_due(1, 1, 1000, 1000 + W, W)); /* acked */
    assert_false(alarm_reminder_due(0, 0, 1000, 1000 + W, W)); /* cleared */
    assert_true(alarm_escalation_due(1, 0, 0, 0, 1800000, 1800000));
    assert_false(alarm_escalation_due(1, 0, 1, 0, 1800000, 1800000));
    assert_false(alarm_escalation_due(1, 1, 0, 0, 1800000, 1800000));
    assert_false(alarm_escalation_due(1, 0, 0, 0, 1799999, 1800000));
}

static void schedule(void **state)
{
    struct alarm_schedule day = {1, 0x1f, 8 * 60, 18 * 60}; /* Mon-Fri 08-18 */
    struct alarm_schedule night = {1, 0x1f, 22 * 60, 6 * 60}; /* Mon-Fri 22-06 */
    struct alarm_schedule off = {0, 0, 0, 0};
    int dow, min;
    (void)state;
    assert_int_equal(alarm_hhmm_parse("08:00"), 480);
    assert_int_equal(alarm_hhmm_parse("24:00"), 1440);
    assert_int_equal(alarm_hhmm_parse("24:01"), -1);
    assert_int_equal(alarm_hhmm_parse("8"), -1);
    assert_int_equal(alarm_hhmm_parse("08:00x"), -1);
    assert_true(alarm_schedule_allows(&day, 1, 8 * 60));
    assert_false(alarm_schedule_allows(&day, 1, 18 * 60));
    assert_false(alarm_schedule_allows(&day, 6, 10 * 60));
    assert_true(alarm_schedule_allows(&off, 6, 10 * 60));
    /* across midnight: Friday 23:00 yes, Saturday 03:00 (Friday's window)
     * yes, Saturday 23:00 no, Monday 03:00 (Sunday's window) no */
    assert_true(alarm_schedule_allows(&night, 5, 23 * 60));
    assert_true(alarm_schedule_allows(&night, 6, 3 * 60));
    assert_false(alarm_schedule_allows(&night, 6, 23 * 60));
    assert_false(alarm_schedule_allows(&night, 1, 3 * 60));
    assert_true(alarm_schedule_allows(&night, 2, 3 * 60));
    assert_false(alarm_schedule_allows(&night, 3, 12 * 60));
    /* 2024-12-16T02:00:00Z is Monday 10:00 in Asia/Shanghai (+8) */
    alarm_local_time(1734314400, 8 * 3600, &dow, &min);
    assert_int_equal(dow, 1);
    assert_int_equal(min, 600);
    /* 2024-12-15T20:00:00Z: Monday 04:00 in Shanghai, Sunday 20:00 UTC */
    alarm_local_time(1734292800, 8 * 3600, &dow, &min);
    assert_int_equal(dow, 1);
    assert_int_equal(min, 240);
    alarm_local_time(1734292800, 0, &dow, &min);
    assert_int_equal(dow, 7);
    /* level-2 override */
    assert_false(alarm_may_send(&day, 1, 1, 1734292800, 8 * 3600));
    assert_true(alarm_may_send(&day, 1, 2, 1734292800, 8 * 3600));
    assert_false(alarm_may_send(&day, 0, 2, 1734292800, 8 * 3600));
    assert_true(alarm_may_send(&day, 1, 1, 1734314400, 8 * 3600));
}

static void settings(void **state)
{
    struct alarm_cfg c;
    (void)state;
    alarm_cfg_defaults(&c);
    assert_true(c.debounce_s == 600 && c.level2_override && !c.sched.enabled);
    assert_int_equal(alarm_cfg_parse(&c, "{\"debounce_min\":0.05,\"reminders\":false,"
                                         "\"schedule\":{\"enabled\":true,\"days\":[1,5,9],"
                                         "\"start\":\"22:00\",\"end\":\"06:00\","
                                         "\"tz\":\"Etc/GMT-3\"},"
                                         "\"escalation\":{\"enabled\":true,\"after_min\":0.5},"
                                         "\"retry\":{\"max_attempts\":0}}"),
                     0);
    assert_true(c.debounce_s > 2.999 && c.debounce_s < 3.001);
    assert_false(c.reminders);
    assert_int_equal(c.sched.days, 0x11); /* 9 ignored */
    assert_int_equal(c.sched.start_min, 1320);
    assert_int_equal(c.sched.end_min, 360);
    assert_string_equal(c.tz, "Etc/GMT-3");
    assert_true(c.escalation && c.escalate_after_s == 30);
    assert_int_equal(c.max_attempts, 6); /* out of bounds: default kept */
    /* bad values keep what was there; not an object is an error */
    assert_int_equal(alarm_cfg_parse(&c, "{\"debounce_min\":-1,\"schedule\":{\"start\":\"25:00\"}}"), 0);
    assert_true(c.debounce_s > 2.999 && c.debounce_s < 3.001);
    assert_int_equal(c.sched.start_min, 1320);
    assert_int_equal(alarm_cfg_parse(&c, "[1]"), -9);
    assert_int_equal(alarm_cfg_parse(&c, "{"), -9);
}

/* OVER_RANGE (issue #15): hovering at the range maximum (50000, band 2 %
 * = 1000) keeps one alarm open; it clears only below 49000; its raise is
 * debounced, a level-2 gas limit's is not. */
static void over_range_hysteresis(void **state)
{
    struct alarm_open st = {0, 0, NAN};
    struct alarm_decision d;
    static const double v[] = {50001, 49999, 50001, 49500, 50001, 49000};
    static const int want[] = {AL_ACT_RAISE, AL_ACT_NONE,   AL_ACT_UPDATE,
                               AL_ACT_NONE,  AL_ACT_UPDATE, AL_ACT_CLEAR};
    (void)state;
    for(int i = 0; i < 6; i++) {
        struct alarm_sample s = rd(v[i] > LIM.range_max ? LIM.range_max : v[i]);
        s.over_range = v[i] > LIM.range_max;
        alarm_decide(AL_OVER_RANGE, &LIM, 2, &st, &s, &d);
        assert_int_equal(d.action, want[i]);
        alarm_apply(AL_OVER_RANGE, &st, &d);
    }
    assert_int_equal(st.open, 0);
    assert_false(alarm_raise_forced(AL_OVER_RANGE, 2));
    assert_true(alarm_raise_forced(AL_HIGH, 2));
    assert_false(alarm_raise_forced(AL_HIGH, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(high_two_levels),    cmocka_unit_test(hysteresis_no_flap),
        cmocka_unit_test(low_oxygen),         cmocka_unit_test(fault_types),
        cmocka_unit_test(offline),            cmocka_unit_test(debounce_and_reminders),
        cmocka_unit_test(schedule),           cmocka_unit_test(settings),
        cmocka_unit_test(over_range_hysteresis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

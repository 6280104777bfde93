/* test_payload.c - telemetry/status/topic validation (R-MQ-2, R-MQ-3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "payload.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct mcs_payload_limits LIM = {1800000000, 300, 3 * 86400};

static int parse(const char *s, struct mcs_reading *r)
{
    memset(r, 0, sizeof(*r));
    return mcs_payload_parse(s, strlen(s), &LIM, r);
}

static void seed_payload(void **state)
{
    struct mcs_reading r;
    (void)state;
    assert_int_equal(parse("{\"ts\":1800000000,\"seq\":1024,\"v_raw\":2350.5,\"temp\":25.4,"
                           "\"humi\":65.2,\"bat\":85,\"rssi\":-75,\"net\":\"4G\",\"ver\":\"1.0.2\","
                           "\"err\":0}",
                           &r),
                     MCS_REJ_NONE);
    assert_int_equal(r.ts, 1800000000);
    assert_int_equal(r.seq, 1024);
    assert_true(fabs(r.v_raw - 2350.5) < 1e-9);
    assert_true(fabs(r.temp - 25.4) < 1e-9);
    assert_int_equal(r.bat, 85);
    assert_int_equal(r.rssi, -75);
    assert_string_equal(r.ver, "1.0.2");
    assert_string_equal(r.net, "4G");
}

static void optional_fields_absent(void **state)
{
    struct mcs_reading r;
    (void)state;
    assert_int_equal(parse("{\"ts\":1800000000,\"seq\":0,\"v_raw\":1}", &r), MCS_REJ_NONE);
    assert_true(isnan(r.temp));
    assert_true(isnan(r.humi));
    assert_int_equal(r.bat, MCS_ABSENT_INT);
    assert_int_equal(r.rssi, MCS_ABSENT_INT);
    assert_int_equal(r.err, 0);
    /* white space may follow the object */
    assert_int_equal(parse("{\"ts\":1800000000,\"seq\":0,\"v_raw\":1} \r\n\t", &r),
                     MCS_REJ_NONE);
    /* unknown keys are ignored */
    assert_int_equal(parse("{\"ts\":1800000000,\"seq\":0,\"v_raw\":1,\"x\":[1,2]}", &r),
                     MCS_REJ_NONE);
}

static void rejects(void **state)
{
    struct mcs_reading r;
    char big[200];
    (void)state;
    struct {
        const char *p;
        int want;
    } cases[] = {
        {"", MCS_REJ_bad_json},
        {"not json", MCS_REJ_bad_json},
        {"[1,2,3]", MCS_REJ_bad_json},
        {"42", MCS_REJ_bad_json},
        {"{\"ts\":1800000000,\"seq\":1", MCS_REJ_bad_json},
        {"{\"ts\":NaN,\"seq\":1,\"v_raw\":1}", MCS_REJ_bad_json},
        /* which of two values would count is a guess: refused (issue #16) */
        {"{\"ts\":1800000000,\"seq\":7,\"seq\":\"x\",\"v_raw\":1}", MCS_REJ_dup_key},
        {"{\"ts\":1800000000,\"seq\":7,\"v_raw\":1,\"x\":{\"a\":1,\"a\":2}}", MCS_REJ_dup_key},
        {"{\"ts\":1800000000,\"seq\":7,\"v_raw\":1}garbage", MCS_REJ_trailing_data},
        {"{\"ts\":1800000000,\"seq\":7,\"v_raw\":1}{}", MCS_REJ_trailing_data},
        {"{\"ts\":1800000000,\"seq\":7,\"v_raw\":1,\"ver\":\"1.0\\u0000x\"}", MCS_REJ_bad_json},
        {"{\"seq\":1,\"v_raw\":1}", MCS_REJ_missing_field},
        {"{\"ts\":1800000000,\"v_raw\":1}", MCS_REJ_missing_field},
        {"{\"ts\":1800000000,\"seq\":1}", MCS_REJ_missing_field},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":null}", MCS_REJ_missing_field},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":\"abc\"}", MCS_REJ_bad_type},
        {"{\"ts\":1800000000,\"seq\":1.5,\"v_raw\":1}", MCS_REJ_bad_type},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"bat\":\"x\"}", MCS_REJ_bad_type},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"ver\":5}", MCS_REJ_bad_type},
        {"{\"ts\":1800000000,\"seq\":70000,\"v_raw\":1}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":-1,\"v_raw\":1}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"bat\":101}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"rssi\":5}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"humi\":150}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"temp\":500}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1e400}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"ver\":\"1.0<script>\"}", MCS_REJ_out_of_range},
        {"{\"ts\":1800000000,\"seq\":1,\"v_raw\":1,\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{}}}}}}",
         MCS_REJ_out_of_range},
        {"{\"ts\":1800086400,\"seq\":1,\"v_raw\":1}", MCS_REJ_ts_future},
        {"{\"ts\":1797000000,\"seq\":1,\"v_raw\":1}", MCS_REJ_ts_past},
    };
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = parse(cases[i].p, &r);
        if(got != cases[i].want)
            fail_msg("case %zu '%s': got %s want %s", i, cases[i].p, mcs_reject_name(got),
                     mcs_reject_name(cases[i].want));
    }
    /* not NUL-terminated input is read only within len */
    memset(big, '{', sizeof(big));
    memset(&r, 0, sizeof(r));
    assert_int_equal(mcs_payload_parse(big, sizeof(big), &LIM, &r), MCS_REJ_bad_json);
}

static void topics(void **state)
{
    char sn[MCS_SN_MAX + 1];
    (void)state;
    assert_int_equal(mcs_topic_parse("mcs/A001/up", "mcs", sn), 1);
    assert_string_equal(sn, "A001");
    assert_int_equal(mcs_topic_parse("mcs/A-0_1/status", "mcs", sn), 2);
    assert_int_equal(mcs_topic_parse("mcs/A001/cmd", "mcs", sn), 0);
    assert_int_equal(mcs_topic_parse("mcsx/A001/up", "mcs", sn), 0);
    assert_int_equal(mcs_topic_parse("mcs/bad$sn/up", "mcs", sn), 0);
    assert_int_equal(mcs_topic_parse("mcs//up", "mcs", sn), 0);
    assert_int_equal(mcs_topic_parse("mcs/012345678901234567890123456789012/up", "mcs", sn), 0);
    assert_int_equal(mcs_topic_parse("mcs/01234567890123456789012345678901/up", "mcs", sn), 1);
    assert_int_equal(mcs_topic_parse("mcs/A001/up/x", "mcs", sn), 0);
}

static void status(void **state)
{
    int online = -1;
    int64_t ts = -1;
    (void)state;
    assert_int_equal(mcs_status_parse("{\"status\":\"offline\",\"ts\":1734320000}", 36, &online, &ts),
                     MCS_REJ_NONE);
    assert_int_equal(online, 0);
    assert_int_equal(ts, 1734320000);
    assert_int_equal(mcs_status_parse("{\"status\":\"online\"}", 19, &online, &ts), MCS_REJ_NONE);
    assert_int_equal(online, 1);
    assert_int_equal(ts, 0);
    assert_int_equal(mcs_status_parse("{\"status\":\"zombie\"}", 19, &online, &ts),
                     MCS_REJ_out_of_range);
    assert_int_equal(mcs_status_parse("{\"status\":1}", 12, &online, &ts), MCS_REJ_bad_type);
    assert_int_equal(mcs_status_parse("{}", 2, &online, &ts), MCS_REJ_missing_field);
    assert_int_equal(mcs_status_parse("x", 1, &online, &ts), MCS_REJ_bad_json);
}

/* A command result and the connect-time fields (issue #20, R-MQ-8). */
static void status_result(void **state)
{
    struct mcs_status st;
    const char *ok = "{\"status\":\"online\",\"ts\":1734320000,\"id\":\"42\",\"cmd\":\"ota\","
                     "\"result\":\"failed\",\"reason\":\"md5\"}";
    const char *conn = "{\"status\":\"online\",\"ts\":1,\"ver\":\"1.0.2\",\"net\":\"4G\"}";
    const char *bad = "{\"status\":\"online\",\"result\":\"o k\"}";
    const char *num = "{\"status\":\"online\",\"ver\":102}";
    (void)state;
    assert_int_equal(mcs_status_read(ok, strlen(ok), &st), MCS_REJ_NONE);
    assert_int_equal(st.online, 1);
    assert_string_equal(st.id, "42");
    assert_string_equal(st.cmd, "ota");
    assert_string_equal(st.result, "failed");
    assert_string_equal(st.reason, "md5");
    assert_string_equal(st.ver, "");
    assert_int_equal(mcs_status_read(conn, strlen(conn), &st), MCS_REJ_NONE);
    assert_string_equal(st.ver, "1.0.2");
    assert_string_equal(st.net, "4G");
    assert_string_equal(st.result, "");
    assert_int_equal(mcs_status_read(bad, strlen(bad), &st), MCS_REJ_out_of_range);
    assert_int_equal(mcs_status_read(num, strlen(num), &st), MCS_REJ_bad_type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seed_payload), cmocka_unit_test(optional_fields_absent),
        cmocka_unit_test(status_result),
        cmocka_unit_test(rejects),      cmocka_unit_test(topics),
        cmocka_unit_test(status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

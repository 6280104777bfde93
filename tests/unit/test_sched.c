/* test_sched.c - the plant calendar (localday.h), schedule slots
 * (scheduler.h) and the SigV4 canonical query (s3.h), issue #10. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "localday.h"
#include "s3.h"
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void zone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* Unix seconds of a UTC wall time. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    return mcs_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static void civil_days(void **state)
{
    int y, m, d;
    (void)state;
    assert_int_equal(mcs_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(mcs_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(mcs_days_from_civil(2026, 12, 1), 20788);
    for(int64_t n = -800; n < 80000; n += 37) {
        mcs_civil_from_days(n, &y, &m, &d);
        assert_int_equal(mcs_days_from_civil(y, m, d), n);
    }
    mcs_civil_from_days(mcs_days_from_civil(2024, 2, 29), &y, &m, &d);
    assert_int_equal(y * 10000 + m * 100 + d, 20240229);
    assert_int_equal(mcs_weekday(0), 4);                               /* Thursday */
    assert_int_equal(mcs_weekday(mcs_days_from_civil(2026, 11, 29)), 0); /* Sunday */
}

static void day_parse(void **state)
{
    int64_t d;
    char s[16];
    (void)state;
    assert_int_equal(mcs_day_parse("2026-12-01", &d), 0);
    assert_int_equal(d, 20788);
    assert_int_equal(mcs_day_parse("20261201", &d), 0);
    assert_int_equal(d, 20788);
    assert_int_equal(mcs_day_parse("2026-02-30", &d), MCS_EPARSE);
    assert_int_equal(mcs_day_parse("2026-1-01", &d), MCS_EPARSE);
    assert_int_equal(mcs_day_parse("2026120", &d), MCS_EPARSE);
    assert_int_equal(mcs_day_parse("2026-12-01x", &d), MCS_EPARSE);
    mcs_day_compact(20788, s, sizeof(s));
    assert_string_equal(s, "20261201");
    mcs_day_iso(20788, s, sizeof(s));
    assert_string_equal(s, "2026-12-01");
}

static void shanghai_days(void **state)
{
    int64_t dec1 = mcs_days_from_civil(2026, 12, 1);
    (void)state;
    zone("Asia/Shanghai");
    /* 2026-12-01 00:00 +08 is 2026-11-30 16:00 UTC. */
    assert_int_equal(mcs_local_midnight(dec1), utc(2026, 11, 30, 16, 0, 0));
    assert_int_equal(mcs_local_day(utc(2026, 11, 30, 16, 0, 0)), dec1);
    assert_int_equal(mcs_local_day(utc(2026, 11, 30, 15, 59, 59)), dec1 - 1);
    assert_int_equal(mcs_local_midnight(dec1 + 1) - mcs_local_midnight(dec1), 86400);
    assert_int_equal(mcs_local_at(dec1, 2, 0), utc(2026, 11, 30, 18, 0, 0));
}

static void dst_days(void **state)
{
    (void)state;
    zone("America/New_York");
    int64_t mar8 = mcs_days_from_civil(2026, 3, 8), nov1 = mcs_days_from_civil(2026, 11, 1);
    /* Spring forward: a 23-hour day; fall back: a 25-hour day. */
    assert_int_equal(mcs_local_midnight(mar8 + 1) - mcs_local_midnight(mar8), 23 * 3600);
    assert_int_equal(mcs_local_midnight(nov1 + 1) - mcs_local_midnight(nov1), 25 * 3600);
    assert_int_equal(mcs_local_midnight(mar8), utc(2026, 3, 8, 5, 0, 0));
    assert_int_equal(mcs_local_midnight(mar8 + 1), utc(2026, 3, 9, 4, 0, 0));
    for(int64_t t = mcs_local_midnight(nov1); t < mcs_local_midnight(nov1 + 1); t += 600)
        assert_int_equal(mcs_local_day(t), nov1);
    zone("Asia/Shanghai");
}

static void slots(void **state)
{
    struct sched_spec daily = {SCHED_DAILY, 0, 0, 2, 0};
    struct sched_spec weekly = {SCHED_WEEKLY, 0, 0, 3, 0};
    struct sched_spec hourly = {SCHED_HOURLY, 0, 0, 0, 2};
    struct sched_spec every = {SCHED_EVERY, 300, 0, 0, 0};
    (void)state;
    zone("Asia/Shanghai");
    /* 2026-12-01 01:00 local (a Tuesday): the last 02:00 was yesterday's. */
    int64_t now = utc(2026, 11, 30, 17, 0, 0);
    assert_int_equal(sched_prev_due(&daily, now), utc(2026, 11, 29, 18, 0, 0));
    assert_int_equal(sched_next_due(&daily, now), utc(2026, 11, 30, 18, 0, 0));
    /* At 02:00 sharp the slot is today's; a second later the next is tomorrow. */
    int64_t at2 = utc(2026, 11, 30, 18, 0, 0);
    assert_int_equal(sched_prev_due(&daily, at2), at2);
    assert_int_equal(sched_next_due(&daily, at2), at2 + 86400);
    /* Sunday 03:00 local: 2026-11-29 03:00 +08 = 11-28 19:00 UTC. */
    assert_int_equal(sched_prev_due(&weekly, now), utc(2026, 11, 28, 19, 0, 0));
    assert_int_equal(sched_next_due(&weekly, now), utc(2026, 12, 5, 19, 0, 0));
    /* Hourly at :02: at 10:01 the last slot was 09:02. */
    int64_t t1001 = utc(2026, 12, 1, 2, 1, 0);
    assert_int_equal(sched_prev_due(&hourly, t1001), utc(2026, 12, 1, 1, 2, 0));
    assert_int_equal(sched_next_due(&hourly, t1001), utc(2026, 12, 1, 2, 2, 0));
    assert_int_equal(sched_prev_due(&every, 1000), 900);
    assert_int_equal(sched_next_due(&every, 1000), 1200);
    /* A host off from Saturday to Tuesday finds the missed Sunday slot. */
    int64_t sat = utc(2026, 11, 28, 10, 0, 0);
    assert_true(sched_prev_due(&weekly, now) > sat);
}

static void slots_dst(void **state)
{
    struct sched_spec daily = {SCHED_DAILY, 0, 0, 2, 0};
    (void)state;
    zone("America/New_York");
    /* 02:00 does not exist on 2026-03-08; the slot still falls on that day
     * and the next one is the 9th. */
    int64_t mar8 = mcs_days_from_civil(2026, 3, 8);
    int64_t s = sched_next_due(&daily, mcs_local_midnight(mar8));
    assert_int_equal(mcs_local_day(s), mar8);
    assert_int_equal(mcs_local_day(sched_next_due(&daily, s)), mar8 + 1);
    zone("Asia/Shanghai");
}

static void canonical_query(void **state)
{
    char out[256];
    (void)state;
    {
        const char *n[2] = {"uploadId", "partNumber"};
        const char *v[2] = {"a/b+c= d~", "12"};
        assert_int_equal(s3_canonical_query(n, v, 2, out, sizeof(out)), 0);
        assert_string_equal(out, "partNumber=12&uploadId=a%2Fb%2Bc%3D%20d~");
    }
    {
        const char *n[1] = {"uploads"};
        const char *v[1] = {NULL};
        assert_int_equal(s3_canonical_query(n, v, 1, out, sizeof(out)), 0);
        assert_string_equal(out, "uploads=");
    }
    {
        const char *n[3] = {"prefix", "list-type", "continuation-token"};
        const char *v[3] = {"archive/2026/", "2", "x=="};
        assert_int_equal(s3_canonical_query(n, v, 3, out, sizeof(out)), 0);
        assert_string_equal(out, "continuation-token=x%3D%3D&list-type=2&prefix=archive%2F2026%2F");
        assert_int_equal(s3_canonical_query(n, v, 3, out, 20), MCS_ETOOBIG);
    }
}

static void digests(void **state)
{
    char h[65];
    (void)state;
    s3_sha256_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    s3_md5_hex("hello\n", 6, h);
    assert_string_equal(h, "b1946ac92492d2347c6235b4d2611184");
}

static void config_checks(void **state)
{
    struct mcs_config cfg;
    char err[256];
    (void)state;
    mcs_config_defaults(&cfg);
    assert_string_equal(cfg.tz, "Asia/Shanghai");
    assert_int_equal(mcs_config_validate(&cfg), 0);
    assert_int_equal(mcs_config_set(&cfg, "ARCHIVE_SINK", "ftp", err, sizeof(err)), 0);
    assert_int_equal(mcs_config_validate(&cfg), MCS_ECONFIG);
    assert_int_equal(mcs_config_set(&cfg, "ARCHIVE_SINK", "dir", err, sizeof(err)), 0);
    assert_int_equal(mcs_config_set(&cfg, "TZ", "Asia/Shang hai", err, sizeof(err)), 0);
    assert_int_equal(mcs_config_validate(&cfg), MCS_ECONFIG);
    if(access("/usr/share/zoneinfo/Asia/Shanghai", R_OK) == 0) {
        assert_int_equal(mcs_config_set(&cfg, "TZ", "Mars/Olympus_Mons", err, sizeof(err)), 0);
        assert_int_equal(mcs_config_validate(&cfg), MCS_ECONFIG);
    }
    assert_int_equal(mcs_config_set(&cfg, "TZ", "America/New_York", err, sizeof(err)), 0);
    assert_int_equal(mcs_config_validate(&cfg), 0);
    assert_int_equal(mcs_config_set(&cfg, "ARCHIVE_PART_MB", "0", err, sizeof(err)), MCS_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(civil_days),    cmocka_unit_test(day_parse),
        cmocka_unit_test(shanghai_days), cmocka_unit_test(dst_days),
        cmocka_unit_test(slots),         cmocka_unit_test(slots_dst),
        cmocka_unit_test(canonical_query), cmocka_unit_test(digests),
        cmocka_unit_test(config_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_plugin_state.c - the broker plugin's stateful pieces without a
 * broker: the device table and its snapshot, the mailboxes, the
 * UNKNOWN_DEVICE alarm limiter (R-MQ-7), the worker/admin password memory
 * and rate limit, and the option table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

/* cmocka needs the three above first: a block of its own. */
#include <cmocka.h>

#include "addrset.h"
#include "alarmlim.h"
#include "authopt.h"
#include "devtab.h"
#include "err.h"
#include "mbox.h"
#include "pwverify.h"
#include "vbudget.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void devtab_basics(void **state)
{
    struct devtab t;
    enum devtab_state prev;
    (void)state;

    assert_int_equal(devtab_init(&t), 0);
    assert_int_equal(devtab_loaded(&t), 0);
    assert_int_equal(devtab_get(&t, "A1", 2), DEVTAB_UNKNOWN);
    assert_int_equal(devtab_set(&t, "A1", DEVTAB_ENABLED, &prev), 0);
    assert_int_equal(prev, DEVTAB_UNKNOWN);
    assert_int_equal(devtab_set(&t, "B2", DEVTAB_DISABLED, NULL), 0);
    assert_int_equal(devtab_get(&t, "A1", 2), DEVTAB_ENABLED);
    assert_int_equal(devtab_get(&t, "B2", 2), DEVTAB_DISABLED);
    /* Lookups use the given length, not a terminator. */
    assert_int_equal(devtab_get(&t, "A1xyz", 2), DEVTAB_ENABLED);
    assert_int_equal(devtab_get(&t, "A", 1), DEVTAB_UNKNOWN);
    assert_int_equal(devtab_set(&t, "A1", DEVTAB_DISABLED, &prev), 0);
    assert_int_equal(prev, DEVTAB_ENABLED);
    assert_int_equal(devtab_set(&t, "A1", DEVTAB_UNKNOWN, &prev), 0);
    assert_int_equal(prev, DEVTAB_DISABLED);
    assert_int_equal(devtab_get(&t, "A1", 2), DEVTAB_UNKNOWN);
    assert_int_equal(devtab_count(&t), 1);
    assert_int_equal(devtab_set(&t, "bad sn", DEVTAB_ENABLED, NULL), MCS_EINVAL);
    assert_int_equal(devtab_set(&t, "x'--", DEVTAB_ENABLED, NULL), MCS_EINVAL);
    assert_int_equal(devtab_get(&t, "", 0), DEVTAB_UNKNOWN);
    devtab_cleanup(&t);
}

static void devtab_growth_and_churn(void **state)
{
    struct devtab_map *m = devtab_map_new(0);
    char sn[24];
    (void)state;

    assert_non_null(m);
    for(int i = 0; i < 50000; i++) {
        snprintf(sn, sizeof(sn), "S%06d", i);
        assert_int_equal(devtab_map_put(&m, sn, i % 3 ? DEVTAB_ENABLED : DEVTAB_DISABLED, NULL), 0);
    }
    assert_int_equal(devtab_map_count(m), 50000);
    /* Delete and re-add many: tombstones must not make the table fill up
     * or lose entries. */
    for(int round = 0; round < 5; round++)
        for(int i = 0; i < 50000; i += 2) {
            snprintf(sn, sizeof(sn), "S%06d", i);
            assert_int_equal(devtab_map_put(&m, sn, DEVTAB_UNKNOWN, NULL), 0);
            assert_int_equal(devtab_map_put(&m, sn, DEVTAB_ENABLED, NULL), 0);
        }
    for(int i = 0; i < 50000; i++) {
        snprintf(sn, sizeof(sn), "S%06d", i);
        enum devtab_state want = (i % 2 == 0 || i % 3) ? DEVTAB_ENABLED : DEVTAB_DISABLED;
        assert_int_equal(devtab_map_get(m, sn, strlen(sn)), want);
    }
    assert_int_equal(devtab_map_get(m, "S050000", 7), DEVTAB_UNKNOWN);
    assert_true(m->h.used * 10 <= m->h.cap * 7);
    devtab_map_free(m);
}

static void devtab_snapshot(void **state)
{
    struct devtab t;
    struct devtab_map *m = NULL;
    char path[] = "/tmp/mcs-devtab-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    (void)state;

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(devtab_init(&t), 0);
    devtab_set(&t, "A1", DEVTAB_ENABLED, NULL);
    devtab_set(&t, "B2", DEVTAB_DISABLED, NULL);
    devtab_set(&t, "C3", DEVTAB_ENABLED, NULL);
    devtab_set(&t, "C3", DEVTAB_UNKNOWN, NULL);
    assert_int_equal(devtab_snapshot_save(&t, path), 0);
    assert_int_equal(devtab_snapshot_load(path, 100, &m), 0);
    assert_int_equal(devtab_map_count(m), 2);
    assert_int_equal(devtab_map_get(m, "A1", 2), DEVTAB_ENABLED);
    assert_int_equal(devtab_map_get(m, "B2", 2), DEVTAB_DISABLED);
    assert_int_equal(devtab_map_get(m, "C3", 2), DEVTAB_UNKNOWN);
    devtab_map_free(devtab_replace(&t, m, 2));
    assert_int_equal(devtab_loaded(&t), 2);
    assert_int_equal(devtab_get(&t, "A1", 2), DEVTAB_ENABLED);

    /* Garbage lines are skipped; a wrong header is refused. */
    f = fopen(path, "w");
    fputs("mcs_auth-devtab 1\nA1 1\nbad line\nx'; 1\nB2 0\nC3 7\n\nD4 1", f);
    fclose(f);
    assert_int_equal(devtab_snapshot_load(path, 100, &m), 0);
    assert_int_equal(devtab_map_count(m), 2);
    devtab_map_free(m);
    assert_int_equal(devtab_snapshot_load(path, 1, &m), 0);
    assert_int_equal(devtab_map_count(m), 1);
    devtab_map_free(m);
    f = fopen(path, "w");
    fputs("something else\nA1 1\n", f);
    fclose(f);
    assert_int_equal(devtab_snapshot_load(path, 100, &m), MCS_ECORRUPT);
    assert_null(m);
    unlink(path);
    assert_int_equal(devtab_snapshot_load(path, 100, &m), MCS_ENOTFOUND);
    assert_int_equal(devtab_snapshot_save(&t, "/nonexistent-dir/x"), MCS_EIO);
    devtab_cleanup(&t);
}

static void mbox_bounded(void **state)
{
    struct mbox m;
    int v;
    (void)state;

    assert_int_equal(mbox_init(&m, sizeof(int), 3), 0);
    for(v = 1; v <= 3; v++)
        assert_int_equal(mbox_put(&m, &v), 0);
    assert_int_equal(mbox_put(&m, &v), MCS_EFULL);
    assert_int_equal(mbox_dropped(&m), 1);
    assert_int_equal(mbox_room(&m), 0);
    assert_int_equal(mbox_take(&m, &v), 1);
    assert_int_equal(v, 1);
    v = 9;
    assert_int_equal(mbox_put(&m, &v), 0); /* wraps around */
    int want[] = {2, 3, 9};
    for(int i = 0; i < 3; i++) {
        assert_int_equal(mbox_take(&m, &v), 1);
        assert_int_equal(v, want[i]);
    }
    assert_int_equal(mbox_take(&m, &v), 0);
    mbox_cleanup(&m);
    mbox_cleanup(&m); /* twice is harmless */
}

static const struct alarmlim_cfg LCFG = {3, 600000, 2, 4};

static void alarmlim_one_alarm_per_window(void **state)
{
    struct alarmlim l;
    struct alarmlim_work w;
    int64_t t = 1000000;
    (void)state;

    assert_int_equal(alarmlim_init(&l, &LCFG), 0);
    /* Two attempts: not yet "repeated" enough. */
    alarmlim_note(&l, "U1", "10.0.0.1", t);
    alarmlim_note(&l, "U1", "10.0.0.1", t + 1000);
    assert_int_equal(alarmlim_next(&l, t + 1000, &w), ALARMLIM_NONE);
    alarmlim_note(&l, "U1", "10.0.0.2", t + 2000);
    assert_int_equal(alarmlim_next(&l, t + 2000, &w), ALARMLIM_RAISE);
    assert_string_equal(w.sn, "U1");
    assert_string_equal(w.addr, "10.0.0.2");
    assert_int_equal(w.count, 3);
    alarmlim_done(&l, &w, 42, t + 2000);
    assert_int_equal(alarmlim_next(&l, t + 2000, &w), ALARMLIM_NONE);
    /* Many more attempts inside the window: only count updates. */
    for(int i = 0; i < 100; i++)
        alarmlim_note(&l, "U1", "10.0.0.2", t + 3000 + i);
    assert_int_equal(alarmlim_next(&l, t + 4000, &w), ALARMLIM_COUNT);
    assert_int_equal(w.alarm_id, 42);
    assert_int_equal(w.count, 100);
    alarmlim_done(&l, &w, 42, t + 4000);
    assert_int_equal(alarmlim_next(&l, t + 4000, &w), ALARMLIM_NONE);
    /* After the window, a new alarm after the threshold again. */
    t += 600000 + 5000;
    alarmlim_note(&l, "U1", NULL, t);
    assert_int_equal(alarmlim_next(&l, t, &w), ALARMLIM_NONE);
    alarmlim_note(&l, "U1", NULL, t + 1);
    alarmlim_note(&l, "U1", NULL, t + 2);
    assert_int_equal(alarmlim_next(&l, t + 61000, &w), ALARMLIM_RAISE);
    assert_int_equal(w.count, 3);
    alarmlim_cleanup(&l);
}

static void alarmlim_global_cap_and_failures(void **state)
{
    struct alarmlim l;
    struct alarmlim_work w;
    int64_t t = 5000000;
    const char *sns[] = {"X1", "X2", "X3"};
    int raised = 0;
    (void)state;

    assert_int_equal(alarmlim_init(&l, &LCFG), 0);
    for(int k = 0; k < 3; k++)
        for(int i = 0; i < 3; i++)
            alarmlim_note(&l, sns[k], "a", t);
    /* A failed write keeps the attempts and does not use the cap. */
    assert_int_equal(alarmlim_next(&l, t, &w), ALARMLIM_RAISE);
    alarmlim_done(&l, &w, 0, t);
    while(alarmlim_next(&l, t, &w) == ALARMLIM_RAISE) {
        alarmlim_done(&l, &w, 100 + raised, t);
        raised++;
    }
    assert_int_equal(raised, 2); /* max_per_min */
    assert_int_equal(l.suppressed, 0);
    /* The failed one is due again after its retry delay, but the minute's
     * cap is used up: held back and counted once. */
    assert_int_equal(alarmlim_next(&l, t + 6000, &w), ALARMLIM_NONE);
    assert_int_equal(alarmlim_next(&l, t + 7000, &w), ALARMLIM_NONE);
    assert_int_equal(l.suppressed, 1);
    /* Next minute: the held-back one goes out (the failed one retried too). */
    assert_int_equal(alarmlim_next(&l, t + 60000, &w), ALARMLIM_RAISE);
    alarmlim_done(&l, &w, 200, t + 60000);
    assert_int_equal(alarmlim_next(&l, t + 60000, &w), ALARMLIM_NONE);
    alarmlim_cleanup(&l);
}

static void alarmlim_bounded_tracking(void **state)
{
    struct alarmlim l;
    struct alarmlim_work w;
    char sn[16];
    (void)state;

    assert_int_equal(alarmlim_init(&l, &LCFG), 0);
    for(int i = 0; i < 100; i++) {
        snprintf(sn, sizeof(sn), "Z%d", i);
        alarmlim_note(&l, sn, "a", 1000 + i);
    }
    assert_int_equal(l.n, 4); /* max_tracked */
    /* Quiet for a whole window below the threshold: forgotten. */
    assert_int_equal(alarmlim_next(&l, 1000 + 700000, &w), ALARMLIM_NONE);
    assert_int_equal(l.n, 0);
    alarmlim_cleanup(&l);
}

static char HASH[crypto_pwhash_STRBYTES];

static int make_hash(void **state)
{
    (void)state;
    if(sodium_init() < 0)
        return -1;
    /* Small limits keep the test fast; the format is what the broker uses. */
    return crypto_pwhash_str(HASH, "s3cret", 6, crypto_pwhash_OPSLIMIT_MIN,
                             crypto_pwhash_MEMLIMIT_MIN * 4);
}

static void pwverify_memory_and_limit(void **state)
{
    struct pwverify v;
    (void)state;

    assert_int_equal(pwv_init(&v, HASH, 60000, 10000, 2), 0);
    assert_int_equal(pwv_check(&v, "s3cret", 6, 1000), PWV_OK);
    assert_int_equal(v.verifications, 1);
    /* Remembered: no second verification for the same password. */
    for(int i = 0; i < 100; i++)
        assert_int_equal(pwv_check(&v, "s3cret", 6, 1000 + i), PWV_OK);
    assert_int_equal(v.verifications, 1);
    /* A wrong password: verified once, then remembered as wrong. */
    assert_int_equal(pwv_check(&v, "wrong", 5, 2000), PWV_BAD);
    assert_int_equal(pwv_check(&v, "wrong", 5, 2001), PWV_BAD);
    assert_int_equal(v.verifications, 2);
    /* New wrong passwords beyond the rate: refused without verifying. */
    assert_int_equal(pwv_check(&v, "w1", 2, 2002), PWV_BAD);
    assert_int_equal(pwv_check(&v, "w2", 2, 2003), PWV_LIMITED);
    assert_int_equal(v.verifications, 3);
    /* The right one still passes (remembered), even while limited. */
    assert_int_equal(pwv_check(&v, "s3cret", 6, 2004), PWV_OK);
    /* Memory expires. */
    assert_int_equal(pwv_check(&v, "s3cret", 6, 1000 + 60001 + 5000), PWV_OK);
    assert_int_equal(v.verifications, 4);
    assert_int_equal(pwv_check(&v, "s3cre", 5, 100000), PWV_BAD);
    assert_int_equal(pwv_check(&v, "s3crett", 7, 100001), PWV_BAD);
    pwv_cleanup(&v);

    assert_int_equal(pwv_init(&v, "", 1, 1, 1), 0);
    assert_int_equal(pwv_check(&v, "x", 1, 1), PWV_NOT_CONFIG);
    assert_int_equal(pwv_init(&v, "$argon2id$garbage", 1, 1, 1), MCS_EINVAL);
    assert_int_equal(pwv_init(&v, "plaintext", 1, 1, 1), MCS_EINVAL);
    pwv_cleanup(&v);
}

static void pwverify_recall_then_verify(void **state)
{
    struct pwverify v;
    (void)state;

    assert_int_equal(pwv_init(&v, HASH, 60000, 10000, 1), 0);
    assert_int_equal(pwv_recall(&v, "s3cret", 6, 1000), PWV_UNKNOWN);
    assert_int_equal(v.verifications, 0);
    /* pwv_verify has no budget of its own: the caller's (vbudget) counts. */
    assert_int_equal(pwv_verify(&v, "nope", 4, 1000), PWV_BAD);
    assert_int_equal(pwv_verify(&v, "s3cret", 6, 1001), PWV_OK);
    assert_int_equal(v.verifications, 2);
    assert_int_equal(pwv_recall(&v, "s3cret", 6, 1002), PWV_OK);
    assert_int_equal(pwv_recall(&v, "nope", 4, 1002), PWV_BAD);
    assert_int_equal(pwv_recall(&v, "other", 5, 1002), PWV_UNKNOWN);
    pwv_cleanup(&v);
    assert_int_equal(pwv_init(&v, "", 1, 1, 1), 0);
    assert_int_equal(pwv_recall(&v, "x", 1, 1), PWV_NOT_CONFIG);
    assert_int_equal(pwv_verify(&v, "x", 1, 1), PWV_NOT_CONFIG);
    pwv_cleanup(&v);
}

static void addrset_internal_addresses(void **state)
{
    struct addrset s;
    unsigned char a[16];
    char err[128];
    (void)state;

    assert_int_equal(addrset_parse(&s, "127.0.0.1, ::1 10.0.0.0/8,fd00::/8", err, sizeof(err)), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(addr_parse("127.0.0.1", a), 0);
    assert_true(addrset_has(&s, a));
    /* A dual-stack listener reports IPv4 clients as mapped addresses. */
    assert_int_equal(addr_parse("::ffff:127.0.0.1", a), 0);
    assert_true(addrset_has(&s, a));
    assert_int_equal(addr_parse("127.0.0.2", a), 0);
    assert_false(addrset_has(&s, a));
    assert_int_equal(addr_parse("10.200.3.4", a), 0);
    assert_true(addrset_has(&s, a));
    assert_int_equal(addr_parse("11.0.0.1", a), 0);
    assert_false(addrset_has(&s, a));
    assert_int_equal(addr_parse("::1", a), 0);
    assert_true(addrset_has(&s, a));
    assert_int_equal(addr_parse("fd12::5%eth0", a), 0);
    assert_true(addrset_has(&s, a));
    assert_int_equal(addr_parse("2001:db8::1", a), 0);
    assert_false(addrset_has(&s, a));
    assert_int_equal(addr_parse("not an address", a), MCS_EINVAL);
    assert_int_equal(addr_parse(NULL, a), MCS_EINVAL);
    assert_int_equal(addrset_parse(&s, "127.0.0.0/33", err, sizeof(err)), MCS_ECONFIG);
    assert_int_equal(addrset_parse(&s, "localhost", err, sizeof(err)), MCS_ECONFIG);
    assert_non_null(strstr(err, "localhost"));
    assert_int_equal(addrset_parse(&s, "", err, sizeof(err)), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(addr_parse("127.0.0.1", a), 0);
    assert_false(addrset_has(&s, a));
    assert_int_equal(addrset_parse(&s, "0.0.0.0/0", err, sizeof(err)), 0);
    assert_true(addrset_has(&s, a));
}

static void vbudget_per_address(void **state)
{
    struct vbudget b;
    unsigned char x[16], y[16], z[16];
    (void)state;

    assert_int_equal(vbudget_init(&b, 2, 5, 2), 0);
    addr_parse("127.0.0.3", x);
    addr_parse("127.0.0.1", y);
    addr_parse("127.0.0.9", z);
    /* A flood from x spends x's budget only ... */
    assert_int_equal(vbudget_take(&b, x, 1000), VB_OK);
    assert_int_equal(vbudget_take(&b, x, 1000), VB_OK);
    for(int i = 0; i < 100; i++)
        assert_int_equal(vbudget_take(&b, x, 1000 + i), VB_ADDR);
    /* ... so y still gets its verifications. */
    assert_int_equal(vbudget_take(&b, y, 1100), VB_OK);
    assert_int_equal(vbudget_take(&b, y, 1100), VB_OK);
    /* The total: 5 per second, 4 spent; the table holds 2 addresses, a
     * third shares the overflow bucket. */
    assert_int_equal(vbudget_take(&b, z, 1100), VB_OK);
    assert_int_equal(vbudget_take(&b, z, 1100), VB_TOTAL);
    /* Refilled after a second. */
    assert_int_equal(vbudget_take(&b, x, 2200), VB_OK);
    /* A right password gives its verification back. */
    assert_int_equal(vbudget_take(&b, x, 2200), VB_OK);
    assert_int_equal(vbudget_take(&b, x, 2200), VB_ADDR);
    vbudget_refund(&b, x);
    assert_int_equal(vbudget_take(&b, x, 2200), VB_OK);
    vbudget_cleanup(&b);
    assert_int_equal(vbudget_init(&b, 0, 5, 2), MCS_EINVAL);
}

static void options(void **state)
{
    struct mcs_auth_opts *o = malloc(sizeof(*o));
    char err[256], envpath[] = "/tmp/mcs-authopt-XXXXXX";
    int fd;
    FILE *f;
    (void)state;

    assert_non_null(o);
    const struct authopt_kv ok[] = {
        {"vendor_secret", "vs"},     {"DB_PORT", "6543"},   {"prefix", "plant"},
        {"alarm_min_attempts", "2"}, {"worker_hash", HASH},
    };
    assert_int_equal(authopt_parse(o, ok, 5, err, sizeof(err)), 0);
    assert_string_equal(o->cfg.vendor_secret, "vs");
    assert_int_equal(o->cfg.db_port, 6543);
    assert_string_equal(o->cfg.mqtt_prefix, "plant");
    assert_int_equal(o->alarm_min_attempts, 2);
    assert_int_equal(o->alarm_window_s, 600);
    assert_int_equal(o->max_username, 64);
    assert_string_equal(o->cfg.db_name, "mcs_iot");

    const struct authopt_kv typo[] = {{"vendor_secret", "vs"}, {"db_hots", "x"}};
    assert_int_equal(authopt_parse(o, typo, 2, err, sizeof(err)), MCS_ECONFIG);
    assert_non_null(strstr(err, "db_hots"));
    const struct authopt_kv range[] = {{"vendor_secret", "vs"}, {"db_port", "70000"}};
    assert_int_equal(authopt_parse(o, range, 2, err, sizeof(err)), MCS_ECONFIG);
    const struct authopt_kv nosecret[] = {{"db_port", "5432"}};
    assert_int_equal(authopt_parse(o, nosecret, 1, err, sizeof(err)), MCS_ECONFIG);
    assert_non_null(strstr(err, "vendor_secret"));
    const struct authopt_kv clear[] = {{"vendor_secret", "vs"}, {"admin_hash", "hunter2"}};
    assert_int_equal(authopt_parse(o, clear, 2, err, sizeof(err)), MCS_ECONFIG);
    assert_null(strstr(err, "hunter2")); /* never echo a secret */

    /* env_file first, explicit options win over it. */
    fd = mkstemp(envpath);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("VENDOR_SECRET=fromfile\nDB_HOST=db.example\nUNRELATED=1\nDB_PORT=5555\n", f);
    fclose(f);
    const struct authopt_kv withfile[] = {{"db_port", "6000"}, {"env_file", envpath}};
    assert_int_equal(authopt_parse(o, withfile, 2, err, sizeof(err)), 0);
    assert_string_equal(o->cfg.vendor_secret, "fromfile");
    assert_string_equal(o->cfg.db_host, "db.example");
    assert_int_equal(o->cfg.db_port, 6000);
    unlink(envpath);
    const struct authopt_kv nofile[] = {{"env_file", envpath}};
    assert_int_equal(authopt_parse(o, nofile, 1, err, sizeof(err)), MCS_ECONFIG);
    authopt_cleanup(o);
    assert_int_equal(o->cfg.vendor_secret[0], 0);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(devtab_basics),
        cmocka_unit_test(devtab_growth_and_churn),
        cmocka_unit_test(devtab_snapshot),
        cmocka_unit_test(mbox_bounded),
        cmocka_unit_test(alarmlim_one_alarm_per_window),
        cmocka_unit_test(alarmlim_global_cap_and_failures),
        cmocka_unit_test(alarmlim_bounded_tracking),
        cmocka_unit_test(pwverify_memory_and_limit),
        cmocka_unit_test(pwverify_recall_then_verify),
        cmocka_unit_test(addrset_internal_addresses),
        cmocka_unit_test(vbudget_per_address),
        cmocka_unit_test(options),
    };
    return cmocka_run_group_tests(tests, make_hash, NULL);
}

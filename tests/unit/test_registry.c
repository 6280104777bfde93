/* test_registry.c - lookups, enable/disable, packet-loss accounting (R-PR-4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "registry.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static struct mcs_reading rd(const char *sn, int seq)
{
    struct mcs_reading r;
    memset(&r, 0, sizeof(r));
    snprintf(r.sn, sizeof(r.sn), "%s", sn);
    r.seq = seq;
    r.bat = 80;
    r.rssi = -70;
    return r;
}

static void lookup_and_loss(void **state)
{
    struct mcs_registry reg;
    struct mcs_calib c = {1.5, -10, 25, 0.1, 50000}, got;
    struct mcs_device_stat st[4];
    (void)state;
    assert_int_equal(registry_init(&reg), 0);
    assert_int_equal(registry_upsert(&reg, "A001", &c, 100, NAN, 1), 0);
    assert_int_equal(registry_upsert(&reg, "A002", &c, 100, NAN, 0), 0);
    struct mcs_reading r = rd("NOPE", 1);
    assert_int_equal(registry_observe(&reg, &r, &got), MCS_REG_UNKNOWN);
    r = rd("A002", 1);
    assert_int_equal(registry_observe(&reg, &r, &got), MCS_REG_DISABLED);
    int seqs[] = {1, 2, 5, 6, 6, 3, 65534, 65535, 0, 1};
    /* 1,2,5,6: 2 lost; 6 again: repeat; 3: older (resend), ignored;
     * 65534 after 6: a forward gap of 65527 >= 32768 counts as older too. */
    for(size_t i = 0; i < 4; i++) {
        r = rd("A001", seqs[i]);
        assert_int_equal(registry_observe(&reg, &r, &got), MCS_REG_OK);
    }
    assert_true(fabs(got.k - 1.5) < 1e-12);
    r = rd("A001", 6);
    registry_observe(&reg, &r, &got);
    r = rd("A001", 3);
    registry_observe(&reg, &r, &got);
    assert_int_equal(registry_take_dirty(&reg, st, 4), 1);
    assert_string_equal(st[0].sn, "A001");
    assert_int_equal(st[0].recv_delta, 4);
    assert_int_equal(st[0].lost_delta, 2);
    assert_int_equal(registry_take_dirty(&reg, st, 4), 0);
    registry_cleanup(&reg);
}

static void wrap_counts_no_loss(void **state)
{
    struct mcs_registry reg;
    struct mcs_calib c = {1, 0, 25, 0, 50000}, got;
    struct mcs_device_stat st[1];
    (void)state;
    registry_init(&reg);
    registry_upsert(&reg, "W", &c, NAN, NAN, 1);
    int seqs[] = {65533, 65534, 65535, 0, 1, 2};
    for(size_t i = 0; i < 6; i++) {
        struct mcs_reading r = rd("W", seqs[i]);
        registry_observe(&reg, &r, &got);
    }
    assert_int_equal(registry_take_dirty(&reg, st, 1), 1);
    assert_int_equal(st[0].recv_delta, 6);
    assert_int_equal(st[0].lost_delta, 0);
    registry_cleanup(&reg);
}

static void many_devices_and_remove(void **state)
{
    struct mcs_registry reg;
    struct mcs_calib c = {1, 0, 25, 0, 50000}, got;
    char sn[16];
    (void)state;
    registry_init(&reg);
    for(int i = 0; i < 20000; i++) {
        snprintf(sn, sizeof(sn), "D%06d", i);
        assert_int_equal(registry_upsert(&reg, sn, &c, NAN, NAN, 1), 0);
    }
    assert_int_equal(registry_count(&reg), 20000);
    for(int i = 0; i < 20000; i += 997) {
        snprintf(sn, sizeof(sn), "D%06d", i);
        assert_int_equal(registry_get_calib(&reg, sn, &got), 0);
    }
    registry_remove(&reg, "D000005");
    assert_int_equal(registry_count(&reg), 19999);
    struct mcs_reading r = rd("D000005", 1);
    assert_int_equal(registry_observe(&reg, &r, &got), MCS_REG_UNKNOWN);
    c.k = 7;
    registry_upsert(&reg, "D000005", &c, NAN, NAN, 1);
    assert_int_equal(registry_observe(&reg, &r, &got), MCS_REG_OK);
    assert_true(got.k == 7);
    registry_cleanup(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(lookup_and_loss),
                                       cmocka_unit_test(wrap_counts_no_loss),
                                       cmocka_unit_test(many_devices_and_remove)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

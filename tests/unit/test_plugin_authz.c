/* test_plugin_authz.c - the broker plugin's identity and topic rules
 * (R-MQ-6): CONNECT shape checks, client id rules, the ACL of each role,
 * shared subscriptions and wildcard containment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

/* cmocka needs the three above first: a block of its own. */
#include <cmocka.h>

#include "authz.h"
#include "err.h"

#include <string.h>

static const struct authz_limits LIM = {64, 128, 128, NULL};

static enum authz_reason ident(const char *u, const char *p, const char *c, enum authz_role *role,
                               char *sn)
{
    return authz_identify(&LIM, u, p, c, role, sn);
}

static void identify_devices_and_principals(void **state)
{
    enum authz_role role;
    char sn[AUTHZ_SN_MAX + 1];
    (void)state;

    assert_int_equal(ident("device_A001", "0123456789abcdef", "device_A001", &role, sn),
                     AUTHZ_R_OK);
    assert_int_equal(role, AUTHZ_DEVICE);
    assert_string_equal(sn, "A001");
    assert_int_equal(ident("worker", "pw", "api-1", &role, sn), AUTHZ_R_OK);
    assert_int_equal(role, AUTHZ_WORKER);
    /* mcsd's own account with its fixed client-id pattern (issue #6): the
     * worker password alone cannot take an instance's session. */
    assert_int_equal(ident("mcsd", "pw", "mcsd-1", &role, sn), AUTHZ_R_OK);
    assert_int_equal(role, AUTHZ_MCSD);
    assert_int_equal(ident("worker", "pw", "mcsd-1", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("admin", "pw", "mcsd-x", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("mcsd", "pw", "api-1", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("mcsd", "pw", "mcsd-", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("mcsd", "pw", "device_A1", &role, sn), AUTHZ_R_CLIENTID);
    {
        struct authz_limits l2 = LIM;
        l2.mcsd_prefix = "plant-";
        assert_int_equal(authz_identify(&l2, "mcsd", "pw", "plant-7", &role, sn), AUTHZ_R_OK);
        assert_int_equal(authz_identify(&l2, "mcsd", "pw", "mcsd-1", &role, sn), AUTHZ_R_CLIENTID);
        assert_int_equal(authz_identify(&l2, "worker", "pw", "mcsd-1", &role, sn), AUTHZ_R_OK);
    }
    /* SN broadcast is the fleet's command topic, never a device. */
    assert_int_equal(ident("device_broadcast", "0123456789abcdef", "device_broadcast", &role, sn),
                     AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("device_Broadcast", "0123456789abcdef", "device_Broadcast", &role, sn),
                     AUTHZ_R_OK);
    assert_int_equal(ident("admin", "pw", "ops", &role, sn), AUTHZ_R_OK);
    assert_int_equal(role, AUTHZ_ADMIN);
    /* Anything else is a stranger. */
    assert_int_equal(ident("root", "pw", "x", &role, sn), AUTHZ_R_UNKNOWN_USER);
    assert_int_equal(ident("Worker", "pw", "x", &role, sn), AUTHZ_R_UNKNOWN_USER);
    assert_int_equal(ident("device", "pw", "x", &role, sn), AUTHZ_R_UNKNOWN_USER);
    assert_int_equal(role, AUTHZ_NONE);
}

static void identify_refuses_bad_input(void **state)
{
    enum authz_role role;
    char sn[AUTHZ_SN_MAX + 1], big[300];
    (void)state;

    assert_int_equal(ident(NULL, "pw", "c", &role, sn), AUTHZ_R_NO_CREDENTIALS);
    assert_int_equal(ident("worker", NULL, "c", &role, sn), AUTHZ_R_NO_CREDENTIALS);
    assert_int_equal(ident("worker", "", "c", &role, sn), AUTHZ_R_NO_CREDENTIALS);
    assert_int_equal(ident("", "pw", "c", &role, sn), AUTHZ_R_NO_CREDENTIALS);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ident(big, "pw", "c", &role, sn), AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("worker", big, "c", &role, sn), AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("worker", "pw", big, &role, sn), AUTHZ_R_BAD_INPUT);
    /* Exactly at the limit is fine. */
    big[64] = '\0';
    assert_int_equal(ident(big, "pw", "c", &role, sn), AUTHZ_R_UNKNOWN_USER);
    /* Not UTF-8, control bytes. */
    assert_int_equal(ident("device_\xff\xfe", "pw", "c", &role, sn), AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("worker", "p\x01w", "c", &role, sn), AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("worker", "pw", "c\x1b[2J", &role, sn), AUTHZ_R_BAD_INPUT);
    /* SQL-looking and otherwise invalid serial numbers. */
    assert_int_equal(ident("device_A1'; DROP TABLE devices;--", "pw",
                           "device_A1'; DROP TABLE devices;--", &role, sn),
                     AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("device_A1 OR 1=1", "pw", "device_A1 OR 1=1", &role, sn),
                     AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("device_", "pw", "device_", &role, sn), AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("device_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", "pw",
                           "device_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", &role, sn),
                     AUTHZ_R_BAD_INPUT); /* 33 characters */
    assert_int_equal(ident("device_../A1", "pw", "device_../A1", &role, sn), AUTHZ_R_BAD_INPUT);
    assert_int_equal(ident("device_A+1", "pw", "device_A+1", &role, sn), AUTHZ_R_BAD_INPUT);
}

static void identify_client_id_rules(void **state)
{
    enum authz_role role;
    char sn[AUTHZ_SN_MAX + 1];
    (void)state;

    /* A device must use its username as client id: no posing as another
     * device (session takeover), no arbitrary ids. */
    assert_int_equal(ident("device_A1", "pw", "device_B2", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("device_A1", "pw", "A1", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("device_A1", "pw", "lg-A1", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("device_A1", "pw", "", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("device_A1", "pw", NULL, &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(role, AUTHZ_NONE);
    /* device_* client ids are reserved for devices. */
    assert_int_equal(ident("worker", "pw", "device_A1", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(ident("admin", "pw", "device_", &role, sn), AUTHZ_R_CLIENTID);
    assert_int_equal(role, AUTHZ_NONE);
}

static void utf8_validation(void **state)
{
    (void)state;
    assert_true(authz_utf8_ok("plain", 5));
    assert_true(authz_utf8_ok("\xe6\xb0\x94\xe4\xbd\x93", 6)); /* 气体 */
    assert_true(authz_utf8_ok("\xf0\x9f\x98\x80", 4));         /* U+1F600 */
    assert_false(authz_utf8_ok("\xc0\xaf", 2));                /* overlong '/' */
    assert_false(authz_utf8_ok("\xe0\x80\xaf", 3));            /* overlong */
    assert_false(authz_utf8_ok("\xed\xa0\x80", 3));            /* surrogate */
    assert_false(authz_utf8_ok("\xf4\x90\x80\x80", 4));        /* > U+10FFFF */
    assert_false(authz_utf8_ok("\xe6\xb0", 2));                /* truncated */
    assert_false(authz_utf8_ok("\x80", 1));
    assert_false(authz_utf8_ok("\xc2\x85", 2)); /* C1 control */
    assert_false(authz_utf8_ok("a\x7f", 2));
    assert_false(authz_utf8_ok("a\0b", 3));
}

static void role_of_usernames(void **state)
{
    const char *sn;
    size_t n;
    (void)state;
    assert_int_equal(authz_role_of("device_X9", &sn, &n), AUTHZ_DEVICE);
    assert_int_equal(n, 2);
    assert_memory_equal(sn, "X9", 2);
    assert_int_equal(authz_role_of("worker", &sn, &n), AUTHZ_WORKER);
    assert_int_equal(authz_role_of("admin", &sn, &n), AUTHZ_ADMIN);
    assert_int_equal(authz_role_of(NULL, &sn, &n), AUTHZ_NONE);
    assert_int_equal(authz_role_of("device_a b", &sn, &n), AUTHZ_NONE);
    assert_int_equal(authz_role_of("nobody", &sn, &n), AUTHZ_NONE);
}

static void wildcard_containment(void **state)
{
    (void)state;
    assert_true(authz_filter_within("mcs/A1/up", "mcs/+/up"));
    assert_true(authz_filter_within("mcs/+/up", "mcs/+/up"));
    assert_true(authz_filter_within("mcs//up", "mcs/+/up"));
    assert_false(authz_filter_within("mcs/#", "mcs/+/up"));
    assert_false(authz_filter_within("mcs/+/+", "mcs/+/up"));
    assert_false(authz_filter_within("mcs/A1/up/x", "mcs/+/up"));
    assert_false(authz_filter_within("mcs/A1", "mcs/+/up"));
    assert_false(authz_filter_within("+/A1/up", "mcs/+/up"));
    assert_false(authz_filter_within("#", "mcs/+/up"));
    assert_true(authz_filter_within("mcs/#", "mcs/#"));
    assert_true(authz_filter_within("mcs", "mcs/#"));
    assert_true(authz_filter_within("mcs/+/cmd", "mcs/#"));
    assert_true(authz_filter_within("mcs/a/b/c/#", "mcs/#"));
    assert_false(authz_filter_within("#", "mcs/#"));
    assert_false(authz_filter_within("+/#", "mcs/#"));
    assert_false(authz_filter_within("mcsx/a", "mcs/#"));
    assert_false(authz_filter_within("$SYS/#", "mcs/#"));
    /* Malformed wildcards are never within anything. */
    assert_false(authz_filter_within("mcs/#/up", "mcs/#"));
    assert_false(authz_filter_within("mcs/a+/up", "mcs/+/up"));
    assert_false(authz_filter_within("mcs/a#", "mcs/#"));
    /* Also below the pattern's '#' (found by tests/fuzz/fuzz_authz). */
    assert_false(authz_filter_within("mcs/x/a+b", "mcs/#"));
    assert_false(authz_filter_within("mcs/x/#/y", "mcs/#"));
    assert_false(authz_filter_within("mcs/statuscs/#\x1a", "#"));
    assert_false(authz_filter_within("$SYS/a/b#", "$SYS/#"));
    assert_false(authz_filter_within("mcs/x", "mcs/#/y"));
}

static void unshare(void **state)
{
    (void)state;
    assert_string_equal(authz_unshare("$share/g/mcs/+/up"), "mcs/+/up");
    assert_string_equal(authz_unshare("mcs/+/up"), "mcs/+/up");
    assert_null(authz_unshare("$share//mcs/+/up"));
    assert_null(authz_unshare("$share/g"));
    assert_null(authz_unshare("$share/g/"));
    assert_null(authz_unshare("$share/g+/mcs/+/up"));
    assert_null(authz_unshare("$share/#/mcs"));
}

static struct authz_rules R;

static int acl(enum authz_role role, const char *sn, const char *topic, int access)
{
    return authz_acl(&R, role, sn, sn ? strlen(sn) : 0, topic, access);
}

static void acl_device(void **state)
{
    (void)state;
    assert_int_equal(authz_rules_init(&R, "mcs"), 0);
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/A1/up", AUTHZ_WRITE));
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/A1/status", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/B2/up", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/A1/cmd", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/broadcast/cmd", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/A1/up/x", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/A1", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A", "mcs/A1/up", AUTHZ_WRITE)); /* prefix of another SN */
    assert_false(acl(AUTHZ_DEVICE, "A1", "other/A1/up", AUTHZ_WRITE));
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/A1/cmd", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/broadcast/cmd", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/B2/cmd", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/+/cmd", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/A1/#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/A1/up", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/A1/cmd", AUTHZ_READ));
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/broadcast/cmd", AUTHZ_READ));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/B2/cmd", AUTHZ_READ));
    assert_true(acl(AUTHZ_DEVICE, "A1", "mcs/#", AUTHZ_UNSUBSCRIBE));
    assert_false(acl(AUTHZ_DEVICE, NULL, "mcs/A1/up", AUTHZ_WRITE));
}

static void acl_worker_admin(void **state)
{
    (void)state;
    assert_int_equal(authz_rules_init(&R, "mcs"), 0);
    /* Worker reads up/status of every device, also through $share. */
    assert_true(acl(AUTHZ_WORKER, NULL, "mcs/+/up", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_WORKER, NULL, "$share/api/mcs/+/up", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_WORKER, NULL, "$share/mcsdx/mcs/+/status", AUTHZ_SUBSCRIBE));
    /* ... but not in mcsd's share group (issue #6): mcsd only. */
    assert_false(acl(AUTHZ_WORKER, NULL, "$share/mcsd/mcs/+/up", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_WORKER, NULL, "$share/mcsd/mcs/+/status", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_MCSD, NULL, "$share/mcsd/mcs/+/up", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_MCSD, NULL, "$share/mcsd/mcs/+/status", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_MCSD, NULL, "mcs/A1/up", AUTHZ_READ));
    assert_true(acl(AUTHZ_MCSD, NULL, "$SYS/broker/clients/connected", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_MCSD, NULL, "mcs/#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_MCSD, NULL, "mcs/A1/up", AUTHZ_WRITE));
    assert_int_equal(authz_rules_set_group(&R, "plantA"), 0);
    assert_true(acl(AUTHZ_WORKER, NULL, "$share/mcsd/mcs/+/up", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_WORKER, NULL, "$share/plantA/mcs/+/up", AUTHZ_SUBSCRIBE));
    assert_int_equal(authz_rules_set_group(&R, "a/b"), MCS_EINVAL);
    assert_int_equal(authz_rules_set_group(&R, ""), MCS_EINVAL);
    assert_int_equal(authz_rules_init(&R, "mcs"), 0);
    assert_true(acl(AUTHZ_WORKER, NULL, "mcs/A1/status", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_WORKER, NULL, "mcs/A1/up", AUTHZ_READ));
    assert_false(acl(AUTHZ_WORKER, NULL, "mcs/#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_WORKER, NULL, "$share/g/mcs/#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_WORKER, NULL, "mcs/+/cmd", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_WORKER, NULL, "mcs/A1/cmd", AUTHZ_READ));
    assert_false(acl(AUTHZ_WORKER, NULL, "$share//mcs/+/up", AUTHZ_SUBSCRIBE));
    /* ... and writes commands, to one device or all. */
    assert_true(acl(AUTHZ_WORKER, NULL, "mcs/A1/cmd", AUTHZ_WRITE));
    assert_true(acl(AUTHZ_WORKER, NULL, "mcs/broadcast/cmd", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_WORKER, NULL, "mcs/A1/up", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_WORKER, NULL, "mcs/A1/status", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_WORKER, NULL, "mcs/+/cmd", AUTHZ_WRITE)); /* never a wildcard */
    /* Admin: everything under the prefix, nothing outside. */
    assert_true(acl(AUTHZ_ADMIN, NULL, "mcs/#", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_ADMIN, NULL, "$share/a/mcs/#", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_ADMIN, NULL, "mcs/A1/up", AUTHZ_WRITE));
    assert_true(acl(AUTHZ_ADMIN, NULL, "mcs/A1/cmd", AUTHZ_READ));
    assert_false(acl(AUTHZ_ADMIN, NULL, "#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_ADMIN, NULL, "mcs/x/#/y", AUTHZ_SUBSCRIBE)); /* malformed */
    /* Broker statistics: read-only for worker and admin (mcsd's health). */
    assert_true(acl(AUTHZ_ADMIN, NULL, "$SYS/#", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_WORKER, NULL, "$SYS/broker/clients/connected", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_WORKER, NULL, "$SYS/broker/clients/connected", AUTHZ_READ));
    assert_false(acl(AUTHZ_WORKER, NULL, "$SYS/broker/x", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_ADMIN, NULL, "$SYS/broker/x", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "$SYS/#", AUTHZ_SUBSCRIBE));
    assert_false(acl(AUTHZ_ADMIN, NULL, "other/x", AUTHZ_WRITE));
    /* Nobody else gets anything. */
    assert_false(acl(AUTHZ_NONE, NULL, "mcs/A1/up", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_NONE, NULL, "mcs/A1/up", AUTHZ_READ));
    assert_false(acl(AUTHZ_ADMIN, NULL, NULL, AUTHZ_READ));
    assert_false(acl(AUTHZ_ADMIN, NULL, "mcs/x", 0x40));
}

static void acl_other_prefix(void **state)
{
    (void)state;
    assert_int_equal(authz_rules_init(&R, "plant1/gas"), 0);
    assert_true(acl(AUTHZ_DEVICE, "A1", "plant1/gas/A1/up", AUTHZ_WRITE));
    assert_false(acl(AUTHZ_DEVICE, "A1", "mcs/A1/up", AUTHZ_WRITE));
    assert_true(acl(AUTHZ_WORKER, NULL, "$share/g/plant1/gas/+/up", AUTHZ_SUBSCRIBE));
    assert_true(acl(AUTHZ_DEVICE, "A1", "plant1/gas/broadcast/cmd", AUTHZ_SUBSCRIBE));
    assert_int_equal(authz_rules_init(&R, ""), MCS_EINVAL);
    assert_int_equal(authz_rules_init(&R, "mcs/#"), MCS_EINVAL);
    assert_int_equal(authz_rules_init(&R, "/mcs"), MCS_EINVAL);
    assert_int_equal(authz_rules_init(&R, "mcs/"), MCS_EINVAL);
    assert_int_equal(authz_rules_init(&R, "$SYS"), MCS_EINVAL);
}

static void reason_names(void **state)
{
    (void)state;
    assert_string_equal(authz_reason_name(AUTHZ_R_OK), "ok");
    assert_string_equal(authz_reason_name(AUTHZ_R_UNKNOWN_SN), "unknown_sn");
    assert_string_equal(authz_reason_name(AUTHZ_R_BAD_INPUT), "bad_input");
    assert_string_equal(authz_reason_name(AUTHZ_R_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identify_devices_and_principals),
        cmocka_unit_test(identify_refuses_bad_input),
        cmocka_unit_test(identify_client_id_rules),
        cmocka_unit_test(utf8_validation),
        cmocka_unit_test(role_of_usernames),
        cmocka_unit_test(wildcard_containment),
        cmocka_unit_test(unshare),
        cmocka_unit_test(acl_device),
        cmocka_unit_test(acl_worker_admin),
        cmocka_unit_test(acl_other_prefix),
        cmocka_unit_test(reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
